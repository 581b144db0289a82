"""Many PDF files: screening campaigns on Dask (:mod:`.campaign`), a watched directory (:mod:`.watch`), their
shared results table (:mod:`.results`) and live summary (:mod:`.live_summary`)."""
