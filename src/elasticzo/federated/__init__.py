"""Federated ElasticZO: many boards train one model by exchanging (step, scalar) pairs for the zeroth-order layers
and averaging the small backprop head (FedAvg), over Flower (the optional extra `elasticzo[federated]`).

The mechanism (spec, partition, replica, server, client, local) needs only numpy and elasticzo; the Flower apps
are in elasticzo.federated.flower, which needs flwr.
"""

from elasticzo.federated.partition import dirichlet, iid
from elasticzo.federated.replica import Replica
from elasticzo.federated.server import FederatedServer, choose_catch_up
from elasticzo.federated.spec import FederationSpec

__all__ = ["FederationSpec", "FederatedServer", "Replica", "choose_catch_up", "dirichlet", "iid"]
