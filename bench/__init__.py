"""The benchmark of `anomaly`: generate a large shop, time every check against its raw SQL (see README.md)."""
