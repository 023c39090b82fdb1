"""Several gateway nodes on one PostgreSQL: each session is run by exactly one node at a
time, the owner of its lease (:mod:`gowa_py.cluster.leases`); a node renews its leases,
stops a worker whose lease it could not renew in time, and takes over the sessions of a
node that stopped renewing (:mod:`gowa_py.cluster.node`). SQLite gateways have no cluster.
"""
