from synthscan.cli.main import app

app(prog_name="synthscan")
