"""The broker queues of the message path: one route queue, one queue per party that consumes its own
(`delivery: queue` in contracts/parties.yaml), and for a party that sends on the broker (`ingress:
queue`) its ingress queue and the reply queue where the hub answers each of its messages
(hub.messaging.queue_ingress). A prefix (settings.queue_prefix) lets several hubs share one broker."""
from __future__ import annotations

__all__ = ["INGRESS_QUEUE", "REPLY_QUEUE", "ROUTE_QUEUE", "broker_grants", "ingress_queue", "party_queue", "reply_queue"]

ROUTE_QUEUE = "hub.route"
INGRESS_QUEUE = "hub.ingress."   # + party id: what the party publishes (its broker user writes only here)
REPLY_QUEUE = "hub.replies."     # + party id: the hub's answer to each of them (the party reads it)


def party_queue(party_id: str, prefix: str = "") -> str:
    return f"{prefix}party.{party_id}"


def ingress_queue(party_id: str, prefix: str = "") -> str:
    return f"{prefix}{INGRESS_QUEUE}{party_id}"


def reply_queue(party_id: str, prefix: str = "") -> str:
    return f"{prefix}{REPLY_QUEUE}{party_id}"


def broker_grants(parties, prefix: str = "", vhost: str = "/",
                  password_hashes: dict[str, str] | None = None) -> dict:
    """What an operator applies on RabbitMQ for the parties that send on the broker (`ingress: queue`):
    a definitions document for `rabbitmqctl import_definitions` — one user per party, named as the
    party, and its permissions on `vhost`, each regex anchored on one name:

      configure  ^$                          nothing: the hub declares every queue and exchange
      write      ^<P>hub\\.ingress\\.<party>$  its ingress exchange (write is granted on exchanges; this
                                             one routes to its ingress queue only, and the default
                                             exchange is not granted)
      read       ^<P>hub\\.replies\\.<party>$ (and ^<P>party\\.<party>$ with `delivery: queue`)
                                             consuming its replies (and its deliveries)

    <P> is the queue prefix, escaped. `password_hashes`: party → a RabbitMQ password hash
    (`rabbitmqctl hash_password`); a party without one gets "" and must be given a password
    (`rabbitmqctl change_password`) or use certificates (EXTERNAL)."""
    import re
    hashes = password_hashes or {}
    users, permissions = [], []
    for party in parties:
        if party.ingress != "queue":
            continue
        reads = [reply_queue(party.id, prefix)] + ([party_queue(party.id, prefix)] if party.delivery == "queue" else [])
        users.append({"name": party.id, "password_hash": hashes.get(party.id, ""),
                      "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []})
        permissions.append({"user": party.id, "vhost": vhost, "configure": "^$",
                            "write": f"^{re.escape(ingress_queue(party.id, prefix))}$",
                            "read": "|".join(f"^{re.escape(q)}$" for q in reads)})
    return {"users": users, "permissions": permissions}
