"""Test certificates, made with the `openssl` CLI at test time.

make_pki(dir) -> Pki: a CA; the broker's certificate (SAN DNS:localhost, IP:127.0.0.1) signed by
it; a client certificate signed by it; another CA and a client certificate signed by that one; a
cluster node's certificate for both ends of its controller connections.
Private keys are unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"): Kafka 4.1.1 reads a PEM key store
file holding one without `ssl.key.password`, and cannot decrypt the PBES2 keys `openssl pkcs8
-topk8 -v2 ...` writes (NoSuchAlgorithmException: PBES2 SecretKeyFactory not available, on JDK 17),
which gregor reads. PKCS12 stores are PBES2/AES-256-CBC under STORE_PASSWORD (OpenSSL 3's default),
which both read.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

STORE_PASSWORD = "compat-store-secret"  # the PKCS12 key stores' (and their keys')


@dataclass(frozen=True)
class Identity:
    """A certificate with its key: `cert` (PEM, leaf then its CA), `key` (PKCS#8 PEM),
    `pem_store` (key then chain: Kafka's `ssl.keystore.type=PEM` file), `p12` (PKCS12, key and
    chain under STORE_PASSWORD)."""
    cert: Path
    key: Path
    pem_store: Path
    p12: Path


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate (PEM): the trust store of clients and of the broker
    server: Identity
    client: Identity  # signed by `ca`
    other_ca: Path  # another CA
    stranger: Identity  # a client certificate signed by `other_ca`
    expired: Identity  # a client certificate signed by `ca` that expired in 2020
    node: Identity  # signed by `ca`, for servers and clients (a cluster node's controller listener)


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))}: {r.stderr}")


def _key(d: Path, name: str) -> Path:
    """A new P-256 key, PKCS#8 PEM."""
    key = d / f"{name}.key"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", key, cwd=d)
    return key


def _ca(d: Path, name: str) -> Path:
    key = _key(d, name)
    cert = d / f"{name}.pem"
    _openssl("req", "-x509", "-new", "-key", key, "-subj", f"/CN={name}", "-days", "2", "-sha256", "-out", cert,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return cert


# `openssl ca` (OpenSSL 3.0's `x509 -req` cannot set dates in the past) for expired certificates.
CA_CONFIG = """[ca]
default_ca = ca_default
[ca_default]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
[any]
commonName = supplied
"""


def _leaf(d: Path, name: str, ca: Path, extensions: str, expired=False) -> Identity:
    key = _key(d, name)
    csr = d / f"{name}.csr"
    _openssl("req", "-new", "-key", key, "-subj", f"/CN={name}", "-out", csr, cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text(extensions)
    leaf = d / f"{name}.leaf.pem"
    if expired:
        (d / "ca.cnf").write_text(CA_CONFIG)
        (d / "index.txt").write_text("")
        (d / "serial").write_text("1000\n")
        _openssl("ca", "-batch", "-config", "ca.cnf", "-in", csr, "-cert", ca,
                 "-keyfile", ca.with_suffix(".key"), "-startdate", "20200101000000Z",
                 "-enddate", "20200102000000Z", "-notext", "-extfile", ext, "-out", leaf,
                 cwd=d)
    else:
        _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca.with_suffix(".key"),
                 "-CAcreateserial", "-days", "2", "-sha256",
                 "-extfile", ext, "-out", leaf, cwd=d)
    cert = d / f"{name}.pem"
    cert.write_text(leaf.read_text() + ca.read_text())
    store = d / f"{name}.store.pem"
    store.write_text(key.read_text() + cert.read_text())
    p12 = d / f"{name}.p12"
    _openssl("pkcs12", "-export", "-in", leaf, "-certfile", ca, "-inkey", key,
             "-name", name, "-out", p12,
             "-passout", f"pass:{STORE_PASSWORD}", cwd=d)
    return Identity(cert, key, store, p12)


SERVER_EXT = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
CLIENT_EXT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
NODE_EXT = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")


def make_pki(directory) -> Pki:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca = _ca(d, "compat-ca")
    other = _ca(d, "other-ca")
    return Pki(ca=ca, server=_leaf(d, "broker", ca, SERVER_EXT),
               client=_leaf(d, "client", ca, CLIENT_EXT), other_ca=other,
               stranger=_leaf(d, "stranger", other, CLIENT_EXT),
               expired=_leaf(d, "expired", ca, CLIENT_EXT, expired=True),
               node=_leaf(d, "node", ca, NODE_EXT))


# ---- the broker's keys (Kafka's; both targets take exactly these) -------------------------

def pem_key_store(identity: Identity) -> dict:
    return {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(identity.pem_store)}


def p12_key_store(identity: Identity) -> dict:
    return {"ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(identity.p12),
            "ssl.keystore.password": STORE_PASSWORD, "ssl.key.password": STORE_PASSWORD}


def client_auth(mode: str, ca: Path) -> dict:
    """ssl.client.auth=required|requested with `ca` as the trust store for client certificates."""
    return {"ssl.client.auth": mode, "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(ca)}
