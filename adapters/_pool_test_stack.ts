/**
 * TEST-ONLY: the ethers and viem adapters' pool tests ({@link poolTests}): an anvil node for the
 * suite and the real client library (`newMpcClient`, fixture account "alice") with the
 * sign-service in this process (testing/room_service.ts: rooms and room tokens on, both pools
 * real). The client an adapter gets records every `signMessage` result and every `signTx`
 * digest, so a test sees how each signature was made.
 * @module
 */
import "../testing/setup.ts";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type MessageSignature, type MpcClient, newMpcClient } from "../client/mpc_client.ts";
import { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import { fixtureAccounts, type PartyAccounts } from "../testing/accounts.ts";
import { ROOM_GATEWAY_URL, roomService } from "../testing/room_service.ts";
import { type AnvilNode, startAnvil } from "../testing/anvil.ts";

/** The account and the path the pool tests sign with. */
export const POOL_ACCOUNT = "alice";
export const POOL_PATH = "m/0/7";

/** A client and the service it signs with. */
interface PoolStack {
  /** The real client, recording (give it to the adapter). */
  readonly client: MpcClient;
  /** Every `signMessage` result, in order. */
  readonly signed: MessageSignature[];
  /** Every digest `signTx` signed (hex), in order. */
  readonly digests: string[];
  /** Stops the background presigning and the in-process gateway. */
  close(): Promise<void>;
}

let accounts: Promise<PartyAccounts> | undefined;

/**
 * A client with the service in this process.
 * @param presignatures `size` presignatures kept per target (low-water mark 1, made in one
 *   session of `size`), or `false`: background presigning off.
 * @returns the client and its records.
 */
async function poolStack(presignatures: number | false): Promise<PoolStack> {
  accounts ??= fixtureAccounts([POOL_ACCOUNT]);
  const parties = await accounts;
  const service = roomService({ accounts: parties });
  const real = newMpcClient({
    rpcTransport: service.transport,
    gatewayUrl: ROOM_GATEWAY_URL,
    token: service.ALICE,
    keyStore: new MemoryKeyStore(parties[0]),
    fetch: service.clientFetch as typeof fetch,
    maxRetries: 0,
    presignaturePool: presignatures === false
      ? false
      : { size: presignatures, lowWater: 1, batch: presignatures },
  });
  const signed: MessageSignature[] = [];
  const digests: string[] = [];
  const client: MpcClient = {
    ...real,
    async signMessage(message, options) {
      const sig = await real.signMessage(message, options);
      signed.push(sig);
      return sig;
    },
    async signTx(digest, accountId, options) {
      const sig = await real.signTx(digest, accountId, options);
      digests.push(sig.digest);
      return sig;
    },
  };
  return {
    client,
    signed,
    digests,
    async close() {
      await real.close();
      await service.close();
    },
  };
}

/**
 * The pool tests of an adapter, inside its suite: anvil runs for the suite; `signAll` signs a
 * transfer that anvil must mine, a personal message and typed data through the adapter, each
 * verified by the chain library. After `warmPresignatures` all three must be pooled (no raw
 * digest signed); with background presigning off, all three in full.
 * @param signAll the adapter's three signatures with `client` on `anvil`.
 */
export function poolTests(signAll: (client: MpcClient, anvil: AnvilNode) => Promise<void>): void {
  let anvil: AnvilNode | undefined;
  before(async () => {
    anvil = await startAnvil();
  });
  after(async () => {
    await anvil?.stop();
  });

  test("after warmPresignatures: a transaction anvil accepts, a message, typed data, each pooled", async () => {
    const stack = await poolStack(3);
    try {
      const target = { account: POOL_ACCOUNT, hash: "keccak256", path: POOL_PATH } as const;
      await stack.client.warmPresignatures(target);
      await signAll(stack.client, anvil!);
      assert.deepEqual(stack.signed.map((s) => s.pooled), [true, true, true]);
      assert.deepEqual(stack.digests, [], "no raw digest signed");
      assert.equal(stack.client.presignatureStats().pooled, 3);
    } finally {
      await stack.close();
    }
  });

  test("with the pool off: the same, signed in full", async () => {
    const stack = await poolStack(false);
    try {
      await signAll(stack.client, anvil!);
      assert.deepEqual(stack.signed.map((s) => s.pooled), [false, false, false]);
    } finally {
      await stack.close();
    }
  });
}
