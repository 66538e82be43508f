#!/usr/bin/env python3
"""Send HL7 v2 messages over MLLP with a client nobody on the Sluice team
wrote -- `hl7.client.MLLPClient` from the PyPI `hl7` package -- and print
each ACK as one JSON line.

    hl7_send.py HOST PORT [MESSAGE ...]

Messages come from the arguments (segments separated by CR or newlines) or,
when there are none, from stdin: one message per paragraph, one segment per
line, a blank line between messages. All messages go over one connection, in
order.

Each output line holds:
  ack       the ACK payload as received (MLLP markers removed), or null when
            the server closed the connection instead of answering
  msa1      MSA-1 as read by `hl7.parse`
  msa2      MSA-2 as read by `hl7.parse` (which strips trailing whitespace
            from the end of the message, so an MSA-2 with trailing spaces
            that ends the ACK loses them here)
  msa2_raw  MSA-2 cut out of the raw ACK with the ACK's own field separator
  msa3      MSA-3 as read by `hl7.parse`
  err3      ERR-3.1 (the HL7 table 0357 code) or null without an ERR segment
  hl7apy    how `hl7apy` reads the same ACK: its structure name, MSA-1 and
            MSA-2, and any validation error (null when valid), or null when
            hl7apy is not installed
"""

import json
import sys

import hl7
from hl7.client import MLLPClient

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
TIMEOUT_SECONDS = 30


def messages_from(args, stdin):
    if args:
        return [normalise(m) for m in args]
    text = stdin.read()
    paragraphs = text.replace("\r\n", "\n").replace("\r", "\n").split("\n\n")
    return [normalise(p) for p in paragraphs if p.strip()]


def normalise(message):
    """Segments end with CR, as HL7 v2 says; blank lines are dropped."""
    lines = message.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\r".join(line for line in lines if line.strip()) + "\r"


def receive_ack(client, first):
    """`MLLPClient.send_message` returns what one `recv` gave; read on until
    the end marker so a split ACK is still whole."""
    data = first
    while EB + CR not in data:
        try:
            more = client.socket.recv(4096)
        except ConnectionResetError:
            more = b""
        if not more:
            return None
        data += more
    start = data.find(SB)
    return data[start + 1 : data.find(EB + CR)]


def describe(ack_bytes):
    try:
        ack = ack_bytes.decode("utf-8")
    except UnicodeDecodeError:
        ack = ack_bytes.decode("latin-1")
    parsed = hl7.parse(ack)
    msa = parsed.segment("MSA")
    try:
        err3 = str(parsed.extract_field("ERR", 1, 3, 1, 1))
    except (KeyError, IndexError):
        err3 = None
    separator = ack[3]
    raw_msa = next(s for s in ack.split("\r") if s.startswith("MSA"))
    raw_fields = raw_msa.split(separator)
    return {
        "ack": ack,
        "msa1": str(msa[1]),
        "msa2": str(msa[2]) if len(msa) > 2 else "",
        "msa2_raw": raw_fields[2] if len(raw_fields) > 2 else "",
        "msa3": str(msa[3]) if len(msa) > 3 else "",
        "err3": err3,
        "hl7apy": read_with_hl7apy(ack),
    }


def read_with_hl7apy(ack):
    try:
        from hl7apy.consts import VALIDATION_LEVEL
        from hl7apy.parser import parse_message
    except ImportError:
        return None
    message = parse_message(ack, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
    try:
        message.validate()
        problem = None
    except Exception as err:  # hl7apy raises several exception types
        problem = f"{type(err).__name__}: {err}"
    return {
        "structure": message.name,
        "msa1": message.msa.msa_1.to_er7(),
        "msa2": message.msa.msa_2.to_er7(),
        "validation_error": problem,
    }


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    host, port = argv[1], int(argv[2])
    messages = messages_from(argv[3:], sys.stdin)
    with MLLPClient(host, port) as client:
        client.socket.settimeout(TIMEOUT_SECONDS)
        for message in messages:
            try:
                first = client.send_message(message)
            except ConnectionResetError:
                first = b""
            ack = receive_ack(client, first)
            result = {"ack": None} if ack is None else describe(ack)
            print(json.dumps(result), flush=True)
            if ack is None:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
