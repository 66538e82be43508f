#!/usr/bin/env python3
"""Send HL7 v2 messages over MLLP inside TLS with clients nobody on the
Sluice team wrote: Python's `ssl` module makes the TLS connection and
`hl7.client.MLLPClient` (PyPI `hl7`) frames the messages on it. Prints one
JSON line per ACK (`msa1`, `msa2`), or exits 3 with the TLS error on stderr
when the handshake or the first read is refused.

    tls_send.py HOST PORT CA_FILE [--cert FILE --key FILE] MESSAGE...
"""

import argparse
import json
import socket
import ssl
import sys

import hl7
from hl7.client import MLLPClient

EB, CR = b"\x1c", b"\x0d"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("messages", nargs="+")
    args = parser.parse_args()

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.cert:
        context.load_cert_chain(args.cert, args.key)

    client = MLLPClient(args.host, args.port)
    client.socket.settimeout(30)
    try:
        # The certificate names localhost; the connection is to 127.0.0.1.
        client.socket = context.wrap_socket(client.socket, server_hostname="localhost")
        for message in args.messages:
            message = "\r".join(message.replace("\r\n", "\n").replace("\r", "\n").split("\n")).strip("\r") + "\r"
            data = client.send_message(message)
            while EB + CR not in data:
                more = client.socket.recv(4096)
                if not more:
                    raise ConnectionError("the server closed the connection without an ACK")
                data += more
            ack = hl7.parse(data[data.find(b"\x0b") + 1 : data.find(EB + CR)].decode("utf-8"))
            msa = ack.segment("MSA")
            print(json.dumps({"msa1": str(msa[1]), "msa2": str(msa[2]), "version": client.socket.version()}), flush=True)
    except (ssl.SSLError, ConnectionError, socket.timeout, OSError) as err:
        print(f"TLS refused: {err}", file=sys.stderr)
        sys.exit(3)
    finally:
        client.close()


if __name__ == "__main__":
    main()
