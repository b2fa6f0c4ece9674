from journey.cli import app

app(prog_name="journey")
