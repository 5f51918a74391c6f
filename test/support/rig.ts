/**
 * The scaffolding e2e files share: one mock LLM for the file, and lists of receivers, temp folders and
 * host runs that are closed or deleted after the file (temp folders kept with LF_KEEP_TMP=1).
 * Call at a test file's top level: it registers the file's beforeAll/afterAll.
 */
import { afterAll, beforeAll } from "bun:test";
import { rmSync } from "node:fs";
import type { AgentRunResult } from "./hosts.ts";
import { startMockLlm, type MockLlm } from "./mock-llm.ts";
import type { Receiver } from "./receiver.ts";

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
