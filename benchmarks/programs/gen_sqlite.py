"""Writes the SQL script of the sqlite3 workload to stdout.

    python3 gen_sqlite.py ROWS > load.sql
    sqlite3 :memory: < load.sql

One transaction of ROWS single-row INSERT statements (each parsed and
prepared on its own) into a table with two indexes, then an UPDATE, a DELETE,
aggregate queries and a final count. The database is in memory, so its pages
are heap memory. Deterministic (seeded generator).
"""
import random
import sys

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 150000
rng = random.Random(42)
alphabet = "abcdefghijklmnopqrstuvwxyz"
out = sys.stdout
out.write("PRAGMA journal_mode=OFF;\nPRAGMA synchronous=OFF;\n")
out.write("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, value REAL, payload TEXT);\n")
out.write("CREATE INDEX t_name ON t(name);\nCREATE INDEX t_value ON t(value);\n")
out.write("BEGIN;\n")
for i in range(1, rows + 1):
    name = "".join(rng.choice(alphabet) for _ in range(rng.randint(4, 12)))
    payload = "".join(rng.choice(alphabet) for _ in range(rng.randint(20, 300)))
    out.write("INSERT INTO t VALUES(%d,'%s',%.4f,'%s');\n" % (i, name, rng.random() * 1000, payload))
out.write("UPDATE t SET payload = payload || name WHERE id % 3 = 0;\n")
out.write("DELETE FROM t WHERE id % 5 = 0;\n")
out.write("COMMIT;\n")
out.write("SELECT substr(name,1,2) AS p, count(*), avg(value) FROM t GROUP BY p ORDER BY 2 DESC LIMIT 3;\n")
out.write("SELECT count(*), sum(length(payload)) FROM t;\n")
out.write("SELECT name FROM t ORDER BY payload LIMIT 1;\n")
