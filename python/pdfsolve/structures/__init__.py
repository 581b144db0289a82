"""Cluster structures: metallic radii, motif generators, close-packed stackings, decoration, dedupe, the library."""
from .decorate import core_shell, random_alloy, surface_shells
from .dedupe import dedupe, sorted_distances, unique_indices
from .library import PRESETS, build_library, unit_geometries
from .motifs import (CENTRES, MOTIFS, cubic_cut, decahedron, hcp_block, hcp_cut, icosahedron, octahedron,
                     retarget)
from .radii import D_BLOCK_28, METALS, bond_length, metallic_radius
from .stacking import classify, close_packed, jagodzinski, sequences

__all__ = ["CENTRES", "D_BLOCK_28", "METALS", "MOTIFS", "PRESETS", "bond_length", "build_library", "classify",
           "close_packed", "core_shell", "cubic_cut", "decahedron", "dedupe", "hcp_block", "hcp_cut", "icosahedron",
           "jagodzinski", "metallic_radius", "octahedron", "random_alloy", "retarget", "sequences", "sorted_distances",
           "surface_shells", "unique_indices", "unit_geometries"]
