"""The only package with SQL. `db.py` owns connections and migrations; one module per concern."""
