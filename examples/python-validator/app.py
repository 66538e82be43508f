"""Validator `patient-id`: a message must carry the patient's identifier of
one type from one assigning authority in PID-3, such as the hospital's
medical record number (`12345^^^HOSP^MR`).

Settings (the `config` table next to `plugin = "..."`):

    { "authority": "HOSP", "type": "MR" }

`authority` is PID-3.4.1 (required); `type` is PID-3.5 (default `MR`). Any
repetition of PID-3 may carry it. The same rule in Rust is the template crate,
examples/plugin-template.
"""

import json

import wit_world
from wit_world.imports import types

SETTINGS = {"authority", "type"}

# HL7 table 0357 codes the answers use.
SEGMENT_SEQUENCE_ERROR = 100
REQUIRED_FIELD_MISSING = 101
APPLICATION_INTERNAL_ERROR = 207


class WitWorld(wit_world.WitWorld):
    def validate(self, msg) -> types.Verdict:
        # Read on every call: an instance serves one message, and one message
        # may meet this plugin in several steps with different settings.
        settings = json.loads(wit_world.imports.host.settings())
        unknown = sorted(set(settings) - SETTINGS)
        if unknown:
            return error(f"unknown setting `{unknown[0]}` (known: authority, type)")
        authority = settings.get("authority")
        if not isinstance(authority, str) or not authority:
            return error("`authority` must name the assigning authority (PID-3.4), e.g. \"HOSP\"")
        kind = settings.get("type", "MR")
        if not isinstance(kind, str) or not kind:
            return error("`type` must be an identifier type code (PID-3.5), e.g. \"MR\"")

        if msg.count("PID") == 0:
            return reject(SEGMENT_SEQUENCE_ERROR, "the message has no PID segment", "PID")
        for i in range(1, msg.repetitions("PID-3") + 1):
            if (
                msg.get(f"PID-3[{i}].1")
                and msg.get(f"PID-3[{i}].4.1") == authority
                and msg.get(f"PID-3[{i}].5") == kind
            ):
                return types.Verdict_Accept()
        return reject(REQUIRED_FIELD_MISSING, f"PID-3 has no {kind} identifier from {authority}", "PID-3")


def reject(code: int, text: str, location: str) -> types.Verdict:
    return types.Verdict_Reject(types.Issue(text=text, code=code, location=location))


def error(text: str) -> types.Verdict:
    return types.Verdict_Error(types.Issue(text=f"invalid plugin settings: {text}", code=APPLICATION_INTERNAL_ERROR, location=None))
