"""`synthscan serve`: REST API, web page and scan history (see app.py for the map)."""
