/**
 * Test inputs of the baked configuration (config.ts): boot settings, a service configuration
 * pointing the gateway at the egress forwarder, a callers file. Shared by config_test.ts and
 * rootfs_test.ts.
 * @module
 */
import type { EnclaveConfigInput } from "./config.ts";

const text = (s: string) => new TextEncoder().encode(s);

/** The age README's example recipient (a valid X25519 recipient; nobody here holds its key). */
export const TEST_RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
export const TEST_KEY_ID =
  "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/** The service configuration text (gateway.url first, so a test can replace it). */
export function serviceYaml(gatewayUrl = "http://127.0.0.1:8080", extra = ""): string {
  return `gateway:\n  url: ${gatewayUrl}\nserver:\n  host: 127.0.0.1\n  index: 1\n` +
    `auth:\n  tokens_file: /app/config/callers.yaml\n${extra}`;
}

/** A callers file with one caller whose token hash is `hex` repeated. */
export function callersYaml(id = "app", hex = "ab"): string {
  return `callers:\n  - { id: ${id}, token_sha256: "${hex.repeat(64 / hex.length)}", ` +
    `accounts: ["*"], may_keygen: true }\n`;
}

/** Valid inputs; `over` replaces parts. */
export function testConfigInput(over: Partial<EnclaveConfigInput> = {}): EnclaveConfigInput {
  return {
    settings: {
      WALLET_MPC_ENCLAVE_KMS_KEY_ID: TEST_KEY_ID,
      WALLET_MPC_ENCLAVE_REGION: "eu-west-1",
      WALLET_MPC_ENCLAVE_AGE_RECIPIENT: TEST_RECIPIENT,
    },
    serviceConfig: text(serviceYaml()),
    callers: text(callersYaml()),
    ...over,
  };
}
