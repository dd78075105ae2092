/**
 * The client party's command line (`deno task client`): scripted and interactive signing,
 * key listing, public keys, distributed key generation and refresh with the sign-service.
 *
 * ```sh
 * deno task client sign --account demo --digest 0x<64 hex> [--path m/0/1] [--json]
 * deno task client sign-message --account demo --message 'text' [--hash keccak256] [--path m/0/1]
 * deno task client sign-message --account demo --message-hex 0x<hex> | --message-file <path>
 * deno task client accounts
 * deno task client pubkey --account demo [--path m/0/1]
 * deno task client address --account demo [--path m/0/1] [--format p2wpkh --network testnet]
 * deno task client xpub --account demo [--path m/0] [--network testnet]
 * deno task client keygen --account new-account
 * deno task client                      # interactive: one command a line, presignatures kept
 * ```
 *
 * `sign` signs a 32-byte digest as given, always in full (a digest never takes a presignature).
 * `sign-message` signs a MESSAGE (exactly one of `--message` UTF-8 text, `--message-hex`,
 * `--message-file`; at most 128 KiB) hashed by both parties with `--hash` (default `keccak256`,
 * the Ethereum hash; `sha256`, `sha256d` for Bitcoin-style digests): the bytes are hashed as
 * they are, so an Ethereum personal message (EIP-191) is signed by passing its prefixed form.
 * It prints what `sign` prints plus `pooled`: whether a presignature made it in one round. A
 * one-shot process holds no presignature (its pool would die with it, so it makes none) and
 * signs in full; the interactive mode keeps the client, and its presignature pool, across its
 * commands: `sign-message` there is pooled once presignatures for the account, path and hash
 * exist (made in the background after the first use, or at once by `presign`), and the
 * background presigning stops when the session ends (`quit`, end of input, Ctrl-C).
 *
 * Interactive mode: each line is a command with the flags of the command line (quote a value
 * with spaces: `--message "two words"`), without the connection flags; plus `presign --account
 * <id> [--hash] [--path]` (fill the pool now), `stats` (the pool's counters), `help` and `quit`.
 * `--presignatures <n>` (at start) sets how many are kept per account, path and hash (default
 * 4; 0: none).
 *
 * Settings (the convention of every entry point, README "Entry points": flag, then environment,
 * then default; each flag's variable is `WALLET_MPC_CLIENT_<FLAG>`): `--service-url`
 * (http://127.0.0.1:50052, the service's gRPC-web/Connect port), `--protocol connect|grpc-web`,
 * `--gateway-url` (http://127.0.0.1:8080), `--token` (the caller credential), `--key-share-file`
 * (client_key_shares.json), `--age-identity-file` or the passphrase in
 * `WALLET_MPC_CLIENT_KEY_PASSPHRASE`, `--plaintext` (development files only). The older names
 * (`WALLET_MPC_TOKEN`, `WALLET_MPC_SERVICE_URL`, ...) still work, with a warning on stderr.
 *
 * Progress goes to stderr; results to stdout (`--json`: one JSON object). Exit codes: 0 ok,
 * 1 failure of the operation, 2 bad usage.
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline/promises";
import { readFileSync, statSync } from "node:fs";
import { installPlatformBackends, platformSafePrime } from "../platform/mod.ts";
import { generatePaillierPrimes } from "../core/protocols/aux_info.ts";
import {
  BECH32_PREFIX,
  type BitcoinNetwork,
  type MpcClient,
  newMpcClient,
  p2wpkhAddress,
} from "./mpc_client.ts";
import { crashHookFrom } from "../platform/crash_hook.ts";
import { openFileKeyStore } from "./file_key_store.ts";
import { parseAgeIdentityFile } from "../keystore/key_store.ts";
import type { ClientKeyStore } from "./mpc_client.ts";
import type { HashName } from "../core/signature.ts";
import {
  MAX_MESSAGE_BYTES,
  parseAccountId,
  parseDerivationPath,
  parseHash,
  parseMessage,
} from "../session/inputs.ts";
import {
  type CommandSpec,
  describeFailure,
  formatHelp,
  parseArgs,
  parseCommandLine,
  type ParsedArgs,
} from "../platform/cli_args.ts";
import {
  applyEnvAliases,
  type EnvAlias,
  envName,
  renamedEnv,
  withEnvNames,
} from "../platform/settings_layers.ts";

/** The flags that say where the service, the gateway and the key shares are; each has a variable. */
const CONNECTION = withEnvNames("CLIENT", {
  "service-url": {
    arg: "url",
    help: "the service's gRPC-web/Connect URL (http://127.0.0.1:50052)",
  },
  protocol: { arg: "connect|grpc-web", help: "the service's protocol (connect)" },
  "gateway-url": { arg: "url", help: "the sign-gateway (http://127.0.0.1:8080)" },
  token: { arg: "token", help: "the caller's token" },
  "key-share-file": { arg: "path", help: "the client's key shares (client_key_shares.json)" },
  "age-identity-file": { arg: "path", help: "the age identity decrypting them" },
});

/** The flags of one command (on the command line, and on a line of the interactive mode). */
const COMMAND_FLAGS = {
  account: { arg: "id", help: "the account" },
  digest: { arg: "hex", help: "sign: the 32-byte digest to sign" },
  message: { arg: "text", help: "sign-message: the message, UTF-8 text" },
  "message-hex": { arg: "hex", help: "sign-message: the message as hex (optional 0x)" },
  "message-file": { arg: "path", help: "sign-message: the message, a file's bytes" },
  hash: {
    arg: "keccak256|sha256|sha256d",
    help: "sign-message, presign: the hash both parties apply to the message (keccak256)",
  },
  path: { arg: "m/0/1", help: "BIP-32 style derivation path (non-hardened)" },
  format: { arg: "ethereum|p2wpkh", help: "address: the address kind (ethereum)" },
  network: {
    arg: "bitcoin|testnet|regtest",
    help: "address --format p2wpkh: the network (bitcoin); xpub: tpub for testnet, regtest",
  },
  json: { kind: "boolean", help: "one JSON object on stdout" },
} as const;

/** Flags of the interactive mode's lines: a command's, without the connection. */
const LINE = { flags: COMMAND_FLAGS, maxPositionals: 1 } as const satisfies CommandSpec;

const COMMAND = {
  flags: {
    ...COMMAND_FLAGS,
    ...CONNECTION,
    plaintext: { kind: "boolean", help: "the key share file is not encrypted (development)" },
    ...withEnvNames("CLIENT", {
      presignatures: {
        arg: "n",
        help: "interactive: presignatures kept per account, path and hash (4; 0: none)",
      },
    }),
  },
  maxPositionals: 1,
} as const satisfies CommandSpec;

/** The variable of the key share file's passphrase (no flag: keep secrets off the command line). */
const PASSPHRASE_ENV = envName("CLIENT", "key-passphrase");

/** The names the client read before the `WALLET_MPC_CLIENT_` scheme, still read with a warning. */
const ENV_ALIASES: readonly EnvAlias[] = renamedEnv("WALLET_MPC", "CLIENT", [
  ...Object.keys(CONNECTION),
  "key-passphrase",
]);

const USAGE = formatHelp({
  title: "wallet-mpc client: the client party's command line",
  usage: ["deno task client [command] [options]"],
  commands: [
    ["sign", "--account <id> --digest <hex> [--path m/0/1]: sign a 32-byte digest (in full)"],
    [
      "sign-message",
      "--account <id> (--message <text> | --message-hex <hex> | --message-file <path>) " +
      "[--hash keccak256|sha256|sha256d] [--path m/0/1]: sign a message hashed by both " +
      "parties (in full here; with a presignature in the interactive mode)",
    ],
    ["pubkey", "--account <id> [--path m/0/1]: public key (compressed hex)"],
    [
      "address",
      "--account <id> [--path m/0/1] [--format ethereum|p2wpkh] [--network ...]: the address " +
      "(EIP-55 Ethereum, or Bitcoin P2WPKH bech32)",
    ],
    ["xpub", "--account <id> [--path m/0] [--network ...]: BIP-32 extended public key"],
    ["accounts", "local accounts"],
    ["keygen", "--account <id>: distributed key generation with the running service"],
    ["refresh", "--account <id>: key refresh"],
    ["health", "the service's health"],
    [
      "(none)",
      "interactive: one command a line (these, and presign, stats, help, quit); " +
      "presignatures are kept across commands",
    ],
  ],
  flags: COMMAND.flags,
  notes: [
    `Precedence: environment < flags. The key share file's passphrase: ${PASSPHRASE_ENV}.`,
    "sign-message hashes the bytes as they are: for an Ethereum personal message (EIP-191) " +
    "give its prefixed form.",
  ],
});

/** The help of the interactive mode. */
const LINE_USAGE = formatHelp({
  title: "wallet-mpc client, interactive: one command a line",
  usage: ["<command> [options]"],
  commands: [
    ["sign", "--account <id> --digest <hex> [--path m/0/1]"],
    [
      "sign-message",
      "--account <id> (--message <text> | --message-hex <hex> | --message-file <path>) " +
      "[--hash ...] [--path m/0/1]: pooled when a presignature is ready",
    ],
    ["presign", "--account <id> [--hash keccak256] [--path m/0/1]: fill the pool now"],
    ["stats", "the presignature pool's counters"],
    ["pubkey, address, xpub, accounts, keygen, refresh, health", "as on the command line"],
    ["help", "this text"],
    ["quit", "stop background presigning and leave (also: end of input, Ctrl-C)"],
  ],
  flags: LINE.flags,
  notes: ['Quote a value with spaces: --message "two words" (or single quotes).'],
});

class Usage extends Error {}

/** Presignatures kept per target in the interactive mode by default. */
const DEFAULT_PRESIGNATURES = 4;

/**
 * The words of one interactive line: split at white space; `"..."` (with `\\` and `\"`
 * escapes) and `'...'` keep theirs.
 * @throws {Usage} for an unterminated quote.
 */
function splitLine(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Usage("unterminated ' quote");
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      word ??= "";
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === "\\" && (line[j + 1] === '"' || line[j + 1] === "\\")) j++;
        word += line[j];
      }
      if (j >= line.length) throw new Usage('unterminated " quote');
      i = j;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** A flag's value read as an outside input: its parser's refusal is a usage error. */
function checked<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new Usage(`--${flag}: ${(e as Error).message}`);
  }
}

/**
 * A message file's bytes.
 * @throws {RangeError} above MAX_MESSAGE_BYTES (told by its size: such a file is never read);
 *   {Error} when it cannot be read.
 */
function readMessageFile(path: string): Uint8Array {
  let size: number;
  try {
    size = statSync(path).size;
    if (size <= MAX_MESSAGE_BYTES) return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as { code?: string }).code ?? e}`);
  }
  throw new RangeError(`expected at most ${MAX_MESSAGE_BYTES} bytes, got ${size}`);
}

/**
 * The message of `sign-message`: exactly one of `--message`, `--message-hex`, `--message-file`.
 * @throws {Usage} none or several given, hex that is not hex, a file that cannot be read, more
 *   than MAX_MESSAGE_BYTES.
 */
function messageOf(args: ParsedArgs): Uint8Array {
  const given = ["message", "message-hex", "message-file"].filter((f) => args.has(f));
  if (given.length !== 1) {
    throw new Usage(
      "sign-message: expected exactly one of --message, --message-hex, --message-file" +
        (given.length ? `, got ${given.map((f) => `--${f}`).join(" and ")}` : ""),
    );
  }
  const flag = given[0];
  const value = args.value(flag)!;
  const bytes = flag === "message-hex"
    ? checked(flag, () => parseMessage(value))
    : flag === "message-file"
    ? checked(flag, () => readMessageFile(value))
    : new TextEncoder().encode(value);
  if (bytes.length > MAX_MESSAGE_BYTES) {
    throw new Usage(
      `--${flag}: expected at most ${MAX_MESSAGE_BYTES} bytes, got ${bytes.length}`,
    );
  }
  return bytes;
}

/** What a command needs of the session it runs in. */
interface Session {
  readonly client: MpcClient;
  /** Whether presignatures are kept across commands (the interactive mode). */
  readonly interactive: boolean;
  /** `--json` given at start. */
  readonly json: boolean;
}

/**
 * Runs one command.
 * @returns the exit status (0).
 * @throws {Usage} a bad command or flag; what the client throws.
 */
async function runCommand(command: string, args: ParsedArgs, session: Session): Promise<number> {
  const { client } = session;
  const json = session.json || args.has("json");
  const need = (flag: string) => {
    const v = args.value(flag);
    if (v === undefined) throw new Usage(`${command}: --${flag} is required`);
    return v;
  };
  const network = (): BitcoinNetwork => {
    const n = args.value("network") ?? "bitcoin";
    if (!Object.hasOwn(BECH32_PREFIX, n)) {
      throw new Usage(`--network: expected ${Object.keys(BECH32_PREFIX).join(", ")}, got ${n}`);
    }
    return n as BitcoinNetwork;
  };
  /** The account, path and hash of a message, checked before any request. */
  const messageTarget = () => {
    const account = need("account");
    const path = args.value("path");
    checked("account", () => parseAccountId(account));
    checked("path", () => parseDerivationPath(path ?? ""));
    const hash: HashName = checked("hash", () => parseHash(args.value("hash") ?? "keccak256"));
    return { account, path, hash };
  };
  const out = (o: Record<string, unknown>, text: string) =>
    console.log(json ? JSON.stringify(o) : text);
  const signature = (sig: { r: string; s: string; v: number; der: string; publicKey: string }) =>
    `r ${sig.r}\ns ${sig.s}\nv ${sig.v}\nder ${sig.der}\npublic key ${sig.publicKey}`;
  switch (command) {
    case "sign": {
      for (const f of ["message", "message-hex", "message-file", "hash"]) {
        if (args.has(f)) throw new Usage(`sign: --${f} is for sign-message (sign takes --digest)`);
      }
      const sig = await client.signTx(need("digest"), need("account"), {
        path: args.value("path"),
      });
      out({ ...sig }, signature(sig));
      return 0;
    }
    case "sign-message": {
      if (args.has("digest")) {
        throw new Usage("sign-message: --digest is for sign (a digest is always signed in full)");
      }
      const message = messageOf(args);
      const target = messageTarget();
      const sig = await client.signMessage(message, target);
      out(
        { ...sig },
        `${signature(sig)}\ndigest ${sig.digest}\npooled ${sig.pooled ? "yes" : "no"}`,
      );
      return 0;
    }
    case "presign":
    case "stats": {
      if (!session.interactive) {
        throw new Usage(
          `${command}: only in the interactive mode (a one-shot process keeps no presignatures)`,
        );
      }
      if (command === "presign") {
        const { account, path, hash } = messageTarget();
        await client.warmPresignatures({ account, hash, path });
      }
      const stats = client.presignatureStats();
      out(
        { ...stats },
        `presignatures held ${stats.pool.held}; messages signed pooled ${stats.pooled}, ` +
          `in full ${stats.full}`,
      );
      return 0;
    }
    case "pubkey": {
      const pk = await client.getPublicKey(need("account"), { path: args.value("path") });
      out({ publicKey: pk }, pk);
      return 0;
    }
    case "address": {
      const account = need("account");
      const path = args.value("path");
      const format = args.value("format") ?? "ethereum";
      const publicKey = await client.getPublicKey(account, { path });
      let address: string;
      if (format === "ethereum") address = await client.getAddress(account, { path });
      else if (format === "p2wpkh") address = p2wpkhAddress(publicKey, network());
      else throw new Usage(`--format: expected ethereum or p2wpkh, got ${format}`);
      out({ account, path: path ?? "m", format, address, publicKey: `0x${publicKey}` }, address);
      return 0;
    }
    case "xpub": {
      const n = network();
      const xpub = await client.getXpub(need("account"), {
        path: args.value("path"),
        version: n === "bitcoin" ? "xpub" : "tpub",
      });
      out({ account: args.value("account"), path: args.value("path") ?? "m", xpub }, xpub);
      return 0;
    }
    case "accounts": {
      const ids = await client.listAccounts();
      const rows = await Promise.all(
        ids.map(async (id) => ({ id, publicKey: await client.getPublicKey(id) })),
      );
      out({ accounts: rows }, rows.map((r) => `${r.id}\t${r.publicKey}`).join("\n"));
      return 0;
    }
    case "keygen": {
      const r = await client.keygen(need("account"));
      out(
        { account: args.value("account"), ...r },
        `created ${args.value("account")}: ${r.publicKey}`,
      );
      return 0;
    }
    case "refresh": {
      const r = await client.refresh(need("account"));
      out(
        { account: args.value("account"), ...r },
        `refreshed ${args.value("account")}: ${r.publicKey}`,
      );
      return 0;
    }
    case "health": {
      const h = await client.service.health({});
      out({
        status: h.status,
        partyIndex: h.partyIndex,
        accounts: h.accounts,
        version: h.version,
      }, h.status);
      return 0;
    }
    default:
      throw new Usage(`unknown command ${command}`);
  }
}

/**
 * The interactive mode: one command a line until `quit` or the end of the input; a failed
 * command is reported and the next line read.
 * @returns 0.
 */
async function interactive(session: Session, busy: { running: boolean }): Promise<number> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // Taken at once, the iterator keeps every line from here on, those that arrive while a
  // command runs (pasted, piped) included.
  const lines = rl[Symbol.asyncIterator]();
  // Ctrl-C quits like `quit` and the end of the input (Ctrl-D, a pipe that ends).
  rl.on("SIGINT", () => rl.close());
  try {
    const ids = await session.client.listAccounts();
    console.error(`accounts: ${ids.join(", ") || "(none)"}; "help" lists the commands`);
    rl.setPrompt("> ");
    rl.prompt();
    for (;;) {
      const next = await lines.next();
      if (next.done) return 0;
      const command = await runLine(next.value, session, busy);
      if (command === "quit" || command === "exit") return 0;
      rl.prompt();
    }
  } finally {
    rl.close();
  }
}

/**
 * Runs one line of the interactive mode, reporting its failure on stderr.
 * @returns the line's command (undefined for an empty or unreadable line).
 */
async function runLine(
  line: string,
  session: Session,
  busy: { running: boolean },
): Promise<string | undefined> {
  let args: ParsedArgs;
  try {
    args = parseArgs(splitLine(line), LINE);
  } catch (e) {
    console.error(`${(e as Error).message} ("help" lists the commands)`);
    return undefined;
  }
  const command = args.positionals[0];
  if (command === "help" || args.help) console.error(LINE_USAGE);
  if (command === undefined || command === "help" || command === "quit" || command === "exit") {
    return command;
  }
  busy.running = true;
  try {
    await runCommand(command, args, session);
  } catch (e) {
    console.error(e instanceof Usage ? e.message : describeFailure(e));
  } finally {
    busy.running = false;
  }
  return command;
}

async function main(): Promise<number> {
  const aliased = applyEnvAliases(process.env, ENV_ALIASES);
  const env = aliased.env;
  const args = parseCommandLine(process.argv.slice(2), COMMAND, USAGE, console);
  if (typeof args === "number") return args;
  for (const w of aliased.warnings) console.error(w);
  const command = args.positionals[0] ?? "";
  const json = args.has("json");
  const get = (flag: keyof typeof CONNECTION | "presignatures", def?: string) =>
    args.value(flag) ?? env[envName("CLIENT", flag)] ?? def;
  const protocol = get("protocol", "connect");
  if (protocol !== "connect" && protocol !== "grpc-web") {
    console.error(`--protocol: expected connect or grpc-web, got ${protocol}`);
    return 2;
  }
  const kept = get("presignatures", String(DEFAULT_PRESIGNATURES))!;
  if (!/^\d{1,4}$/.test(kept) || Number(kept) > 1024) {
    console.error(`--presignatures: expected 0 to 1024, got ${kept}`);
    return 2;
  }
  installPlatformBackends();
  // Test mechanism only: the crash points of the key lifecycle (platform/crash_hook.ts).
  const crashPoint = crashHookFrom(env.WALLET_MPC_CRASH_AT);
  const identityFile = get("age-identity-file");
  const passphrase = env[PASSPHRASE_ENV];
  // Opened on first use, inside the error handling below (health needs no key store).
  let opened: Promise<ClientKeyStore> | undefined;
  const open = () =>
    opened ??= openFileKeyStore({
      path: get("key-share-file", "client_key_shares.json")!,
      identity: identityFile ? parseAgeIdentityFile(readFileSync(identityFile, "utf8")) : undefined,
      passphrase,
      plaintext: args.has("plaintext"),
      create: command === "keygen",
      crashPoint,
    });
  const keyStore: ClientKeyStore = {
    ids: async () => (await open()).ids(),
    get: async (id) => (await open()).get(id),
    record: async (id) => (await open()).record(id),
    update: async (id, f) => (await open()).update(id, f),
  };
  /** Whether a command runs (the interactive mode prints no background progress between). */
  const busy = { running: command !== "" };
  const say = (m: string) => {
    if (!json && busy.running) console.error(m);
  };
  // A one-shot process makes no presignatures: they would die with it (module doc).
  const size = command === "" ? Number(kept) : 0;
  const client = newMpcClient({
    serviceUrl: get("service-url", "http://127.0.0.1:50052"),
    protocol,
    gatewayUrl: get("gateway-url", "http://127.0.0.1:8080")!,
    token: get("token", "")!,
    keyStore,
    crashPoint,
    generatePrimes: () => generatePaillierPrimes((bits) => platformSafePrime(bits)),
    presignaturePool: size === 0
      ? false
      : { size, lowWater: Math.max(1, Math.floor(size / 2)), batch: Math.min(size, 2) },
    onProgress: (e) => {
      if (e.type === "status") {
        if (e.message.startsWith("background")) console.error(`.. ${e.message}`);
        else say(`.. ${e.message}`);
      } else if (e.type === "round-finished") say(`.. ${e.protocol} round ${e.round} done`);
    },
  });
  const session: Session = { client, interactive: command === "", json };
  try {
    if (command === "") return await interactive(session, busy);
    return await runCommand(command, args, session);
  } catch (e) {
    if (e instanceof Usage) {
      console.error(`${e.message}\n\n${USAGE}`);
      return 2;
    }
    console.error(describeFailure(e));
    return 1;
  } finally {
    await client.close();
  }
}

process.exit(await main());
