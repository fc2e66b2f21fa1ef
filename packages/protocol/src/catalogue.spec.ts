import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MESSAGE_TYPES, Message, type MessageCatalogue, messageCatalogue } from './catalogue.js';
import { compareVersions, PROTOCOL_VERSION, parseProtocolVersion } from './version.js';

// The committed catalogue snapshot pins the protocol: any change to a message schema, a sender, a
// limit or a code must come with a new PROTOCOL_VERSION. Regenerate (after bumping) with
//   UPDATE_PROTOCOL_SNAPSHOT=1 pnpm vitest run packages/protocol
// Updating never bypasses the bump: with the version unchanged, it refuses to write.

const SNAPSHOT_PATH = fileURLToPath(new URL('../catalogue.snapshot.json', import.meta.url));
const DOCS_PATH = fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url));
const BIOME = fileURLToPath(new URL('../../../node_modules/@biomejs/biome/bin/biome', import.meta.url));
const UPDATE = process.env.UPDATE_PROTOCOL_SNAPSHOT === '1';
const HOW_TO_UPDATE = [
  `1. bump PROTOCOL_VERSION in packages/protocol/src/version.ts (minor for additions, major for anything else),`,
  '2. record the new version and what changed under "Version history" in docs/protocol.md,',
  '3. regenerate the snapshot: UPDATE_PROTOCOL_SNAPSHOT=1 pnpm vitest run packages/protocol',
].join('\n');

/** What the version pins: everything but the version itself and the prose. */
function contract(catalogue: MessageCatalogue) {
  return {
    limits: catalogue.limits,
    codes: catalogue.codes,
    messages: Object.fromEntries(
      Object.entries(catalogue.messages).map(([type, entry]) => [
        type,
        { sender: entry.sender, schema: entry.schema },
      ]),
    ),
  };
}

function readSnapshot(): MessageCatalogue | undefined {
  return existsSync(SNAPSHOT_PATH)
    ? (JSON.parse(readFileSync(SNAPSHOT_PATH, 'utf8')) as MessageCatalogue)
    : undefined;
}

function writeSnapshot(catalogue: MessageCatalogue): void {
  writeFileSync(SNAPSHOT_PATH, `${JSON.stringify(catalogue, null, 2)}\n`);
  // Keep the committed file in the repository's format so `biome check` stays clean.
  execFileSync(process.execPath, [BIOME, 'format', '--write', SNAPSHOT_PATH], { stdio: 'ignore' });
}

describe('the message catalogue', () => {
  const current = messageCatalogue();

  it('lists every message with a JSON Schema', () => {
    expect(Object.keys(current.messages)).toEqual(MESSAGE_TYPES);
    for (const type of MESSAGE_TYPES) {
      const { schema } = current.messages[type];
      expect(schema).toMatchObject({
        type: 'object',
        required: expect.arrayContaining(['id', 'type', 'body']),
      });
      expect(schema.properties).toMatchObject({ type: { const: type } });
    }
    expect(JSON.parse(JSON.stringify(current))).toEqual(current);
  });

  it('has every catalogued type in the Message union, and only those', () => {
    const union = Message.options.map((o) => o.shape.type.value).sort();
    expect(union).toEqual([...MESSAGE_TYPES].sort());
  });

  it('matches the committed snapshot, or comes with a version bump', () => {
    const stored = readSnapshot();
    const changed = !stored || !isDeepStrictEqual(contract(stored), contract(current));
    const bumped = !stored || stored.protocolVersion !== current.protocolVersion;

    if (stored && changed && !bumped) {
      expect.fail(
        `The message catalogue changed but PROTOCOL_VERSION is still ${PROTOCOL_VERSION}. To release the change:\n${HOW_TO_UPDATE}`,
      );
    }
    if (stored && bumped) {
      expect(
        compareVersions(current.protocolVersion, stored.protocolVersion),
        `PROTOCOL_VERSION ${current.protocolVersion} must be newer than the snapshot's ${stored.protocolVersion}`,
      ).toBeGreaterThan(0);
      const sameMajor =
        parseProtocolVersion(current.protocolVersion)?.major ===
        parseProtocolVersion(stored.protocolVersion)?.major;
      const removed = Object.keys(stored.messages).filter((type) => !(type in current.messages));
      if (sameMajor && removed.length > 0) {
        expect.fail(
          `Removing messages (${removed.join(', ')}) breaks older peers: that needs a new major version.`,
        );
      }
    }
    if (!isDeepStrictEqual(stored, current)) {
      if (!UPDATE) {
        expect.fail(
          `packages/protocol/catalogue.snapshot.json is out of date (${stored ? `snapshot ${stored.protocolVersion}` : 'missing'}, ` +
            `code ${PROTOCOL_VERSION}). Regenerate it:\n  UPDATE_PROTOCOL_SNAPSHOT=1 pnpm vitest run packages/protocol`,
        );
      }
      writeSnapshot(current);
    }
  });

  it('has its version recorded in the history of docs/protocol.md', () => {
    const docs = readFileSync(DOCS_PATH, 'utf8');
    const history = docs.slice(docs.indexOf('## Version history'));
    expect(history, 'docs/protocol.md needs a "## Version history" section').not.toBe(docs.slice(-1));
    const heading = new RegExp(`^### ${PROTOCOL_VERSION.replace('.', '\\.')}(\\s|$)`, 'm');
    expect(
      heading.test(history),
      `add "### ${PROTOCOL_VERSION}" under "## Version history" in docs/protocol.md`,
    ).toBe(true);
  });
});
