"""Trino's Python client against Braid's HTTP port with TLS and passwords.

Usage: trino_tls.py HOST PORT CA_FILE ANN_PASSWORD BOB_PASSWORD. Prints one JSON object.
"""
import json
import os
import sys

import requests
import trino
from trino.auth import BasicAuthentication
from trino.exceptions import HttpError

# requests lets these override a session's own CA file (the trino client sets the session's).
os.environ.pop("REQUESTS_CA_BUNDLE", None)
os.environ.pop("CURL_CA_BUNDLE", None)

host, port, ca_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
password, bob_password = sys.argv[4], sys.argv[5]
out = {}


def connect(user, secret):
    return trino.dbapi.connect(
        host=host, port=port, user=user, http_scheme="https", verify=ca_file,
        auth=BasicAuthentication(user, secret), catalog="tpch", schema="tiny",
    )


def refusal(user, secret):
    try:
        cur = connect(user, secret).cursor()
        cur.execute("SELECT 1")
        cur.fetchall()
    except HttpError as e:
        return str(e)
    return None


# The right password: a query of several pages, each request authenticated.
cur = connect("ann", password).cursor()
cur.execute("SELECT n_name FROM nation ORDER BY n_nationkey")
out["nations"] = len(cur.fetchall())
cur.execute("SELECT l_orderkey FROM tpch.sf1.lineitem LIMIT 50000")
out["paged_rows"] = len(cur.fetchall())
cur.execute("SELECT user FROM system.runtime.queries WHERE query LIKE 'SELECT n_name FROM nation%'")
out["listed_user"] = cur.fetchone()[0]

# A wrong password, an unknown user, and someone else's name in X-Trino-User.
out["wrong_password"] = refusal("ann", password + "x")
out["unknown_user"] = refusal("nobody", password)
out["impersonation"] = None
try:
    cur = trino.dbapi.connect(
        host=host, port=port, user="bob", http_scheme="https", verify=ca_file,
        auth=BasicAuthentication("ann", password),
    ).cursor()
    cur.execute("SELECT 1")
    cur.fetchall()
except HttpError as e:
    out["impersonation"] = str(e)

# A statement's URIs are its user's alone.
base = f"https://{host}:{port}"
first = requests.post(f"{base}/v1/statement", data="SELECT 1", auth=("ann", password),
                      headers={"X-Trino-User": "ann"}, verify=ca_file, timeout=30).json()
next_uri = first["nextUri"]
out["next_uri_scheme"] = next_uri.split(":")[0]
for name, method, who in [("bob_get", "GET", ("bob", bob_password)),
                          ("bob_delete", "DELETE", ("bob", bob_password)),
                          ("ann_get", "GET", ("ann", password))]:
    out[name] = requests.request(method, next_uri, auth=who, verify=ca_file, timeout=30).status_code

print(json.dumps(out))
