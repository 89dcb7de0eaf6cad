"""tshoot's command line: parsing and printing only. Kept empty so `tshoot key` can import
tshoot.cli.offline without loading typer."""
