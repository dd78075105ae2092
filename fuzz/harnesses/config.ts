/**
 * Harnesses of the two YAML configuration parsers: the sign-service's (`parseServiceConfig`) and
 * the sign-gateway's (`parseConfig`), seeded with the committed `config/*.yaml` files and small
 * documents that set every section.
 * @module
 */
import { readFileSync } from "node:fs";
import { parseConfig } from "../../gateway/config.ts";
import { ConfigError } from "../../service/errors.ts";
import { parseServiceConfig } from "../../service/config.ts";
import { allowOnly, bytesOf, type Harness, textOf } from "../_engine.ts";

const file = (name: string) =>
  readFileSync(new URL(`../../config/${name}`, import.meta.url), "utf8");

const YAML_TOKENS = [
  ": ",
  "\n  ",
  "- ",
  "&a ",
  "*a",
  "!!str ",
  "!!binary ",
  "<<: ",
  "{",
  "[",
  "? ",
  "|\n",
  ">-\n",
  "~",
  "0x10",
  "1e9",
  ".inf",
  "-0",
  "%YAML 1.2\n---\n",
  "---\n",
  "...\n",
  '"\\u0000"',
  "'",
];

function configHarness(
  name: string,
  oracle: string,
  seeds: string[],
  run: (t: string) => unknown,
  allowed: (e: unknown) => boolean,
): Harness {
  return {
    name,
    oracle,
    kind: "text",
    fast: false,
    seconds: 20,
    timeoutMs: 2000,
    maxBytes: 16 * 1024,
    dictionary: [...YAML_TOKENS, ...new Set(seeds.join("\n").match(/[a-z_]+(?=:)/g) ?? [])],
    setup: () => ({
      seeds: seeds.map(bytesOf),
      allowed,
      run(input) {
        run(textOf(input));
        return "valid";
      },
    }),
  };
}

/** The sign-service's configuration: every refusal is a ConfigError naming the setting. */
export const serviceConfig: Harness = configHarness(
  "service-config",
  "ConfigError, or a validated configuration",
  [
    file("sign-service.yaml"),
    "server:\n  port: 0\n  web_port: 0\nauth:\n  tokens_file: callers.yaml\n" +
    "key_store:\n  age_identity_file: service.age\n",
    "key_store:\n  allow_plaintext: true\n  plaintext_file: k.json\nauth:\n  tokens_file: c.yaml\n",
  ],
  (text) =>
    parseServiceConfig(text, {}, { env: { WALLET_MPC_PASSPHRASE: "x" }, configFile: "fuzz.yaml" }),
  allowOnly(ConfigError),
);

/** The sign-gateway's configuration: SyntaxError, TypeError or RangeError naming the setting. */
export const gatewayConfig: Harness = configHarness(
  "gateway-config",
  "SyntaxError/TypeError/RangeError, or a validated configuration",
  [
    file("sign-gateway.yaml"),
    "server:\n  port: 0\nbackend:\n  kind: memory\nlimits:\n  max_body_bytes: 4096\n",
  ],
  (text) => parseConfig(text),
  allowOnly(SyntaxError, TypeError, RangeError),
);
