// Router `message-types`: a connector takes the messages whose type is in
// its list. The same rule as the `types` setting of the stock `match`
// router, written in JavaScript.
//
// Settings (the `route_config` table of the connector):
//
//   { "types": ["ADT^A0*", "ORU^R01", "MDM"] }
//
// `CODE^TRIGGER` is matched against MSH-9.1 and MSH-9.2, `CODE` alone against
// MSH-9.1 with any trigger. `*` matches any run of characters and `?` one,
// case-sensitively. Settings that cannot be used answer an error (AE, code
// 207), so no message is routed on a typo.

import { log, settings } from 'sluice:plugin/host@0.1.0';

const APPLICATION_INTERNAL_ERROR = 207;

export function route(msg, connector) {
  // Read on every call: one instance may serve several connectors, each
  // with its own route_config.
  const types = typesFrom(JSON.parse(settings()));
  const header = msg.header();
  const taken = types.some(([code, trigger]) =>
    glob(code, header.messageCode) && (trigger === undefined || glob(trigger, header.triggerEvent)));
  if (!taken) {
    log('debug', `${connector} does not take ${header.messageCode}^${header.triggerEvent}`);
  }
  return taken;
}

/** The `types` setting as [code, trigger] pairs; throws an issue when unusable. */
function typesFrom(config) {
  const unknown = Object.keys(config).filter((key) => key !== 'types');
  if (unknown.length > 0) {
    throw invalidSettings(`unknown setting \`${unknown[0]}\` (known: types)`);
  }
  const types = config.types;
  if (!Array.isArray(types) || types.length === 0) {
    throw invalidSettings('`types` must list message types, like ["ADT^A01", "ORU"]');
  }
  return types.map((type, i) => {
    const parts = typeof type === 'string' ? type.split('^') : [];
    if (parts.length < 1 || parts.length > 2 || parts[0] === '') {
      throw invalidSettings(`types[${i}]: \`${type}\` is not CODE or CODE^TRIGGER (like ORU^R01 or ADT^*)`);
    }
    return parts;
  });
}

/** A thrown issue is the `err` case of route's result: the sender gets AE. */
function invalidSettings(text) {
  return { text: `invalid plugin settings: ${text}`, code: APPLICATION_INTERNAL_ERROR, location: undefined };
}

/** Whole-text glob match: `*` any run of characters, `?` exactly one. */
function glob(pattern, text) {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 's').test(text);
}
