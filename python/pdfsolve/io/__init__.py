"""File input and output: PDF files G(r) and atomic structures."""
from .pdf_files import PDFData, PDFFileError, read_pdf, write_pdf
from .structures import StructureFileError, read_structures

__all__ = ["PDFData", "PDFFileError", "StructureFileError", "read_pdf", "read_structures", "write_pdf"]
