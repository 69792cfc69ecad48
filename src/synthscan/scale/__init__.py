"""Scale-out on Ray: `synthscan scan --engine ray` (shards.py, ray_scan.py) and
`synthscan train --engine ray` (ray_train.py). Imported only when asked for: Ray is an extra."""
