/**
 * The scaffolding test files share. Each helper registers its own beforeAll/afterAll (and beforeEach) in
 * the file or describe block it is called in.
 */
import { afterAll, beforeAll, beforeEach } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentRunResult } from "./hosts.ts";
import { startMockLlm, type MockLlm } from "./mock-llm.ts";
import { startReceiver, type Receiver, type ReceiverOptions } from "./receiver.ts";

/**
 * A local receiver (Langfuse's stand-in) for the enclosing file or describe block: started before its
 * tests, closed after them; `set` hands it to the file's own variable. With `resetEachTest`, what it
 * received is forgotten before every test.
 */
export function useReceiver(set: (receiver: Receiver) => void, options: ReceiverOptions & { resetEachTest?: boolean } = {}): void {
	const { resetEachTest, ...receiverOptions } = options;
	let receiver: Receiver | undefined;
	beforeAll(async () => {
		receiver = await startReceiver(receiverOptions);
		set(receiver);
	});
	afterAll(async () => {
		await receiver?.close();
	});
	if (resetEachTest) beforeEach(async () => void (await receiver?.reset()));
}

/**
 * A temporary folder named `prefix…`: a fresh one for every test (`each`), or one for the enclosing file
 * or describe block (`all`); removed when the next one is made and after the last test (kept with
 * LF_KEEP_TMP=1). `set` hands its path to the file's own variables.
 */
export function useTempDir(prefix: string, set: (dir: string) => void, per: "each" | "all" = "each"): void {
	let dir: string | undefined;
	const remove = () => {
		if (dir && process.env.LF_KEEP_TMP !== "1") rmSync(dir, { recursive: true, force: true });
		dir = undefined;
	};
	(per === "each" ? beforeEach : beforeAll)(() => {
		remove();
		dir = mkdtempSync(join(tmpdir(), prefix));
		set(dir);
	});
	afterAll(remove);
}

/**
 * For e2e files: one mock LLM for the file, and lists of receivers, temp folders and host runs that are
 * closed or deleted after the file (temp folders kept with LF_KEEP_TMP=1).
 */
export interface E2eRig {
	/** Set in beforeAll. */
	mock: MockLlm;
	receivers: Receiver[];
	temporary: string[];
	results: AgentRunResult[];
}

export function e2eRig(): E2eRig {
	const rig: E2eRig = { mock: undefined as unknown as MockLlm, receivers: [], temporary: [], results: [] };
	beforeAll(async () => {
		rig.mock = await startMockLlm();
	});
	afterAll(async () => {
		await rig.mock?.close();
		for (const receiver of rig.receivers) await receiver.close();
		for (const result of rig.results) result.cleanup();
		if (process.env.LF_KEEP_TMP !== "1") for (const dir of rig.temporary) rmSync(dir, { recursive: true, force: true });
	});
	return rig;
}
