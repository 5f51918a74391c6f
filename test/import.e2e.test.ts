/**
 * A session traced LIVE by the extension in a real host, then imported from the host's own record, is still
 * one trace: the import derives every id the way the live hooks did (langfuse.ts piIds / ocIds), so it
 * updates the observations the live run sent instead of adding new ones. One real host at a time.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import langfuse, { type Internals } from "../langfuse.ts";
import { runOmp, runOpencode, runPi } from "./support/hosts.ts";
import { startMockLlm, type MockLlm } from "./support/mock-llm.ts";
import type { Receiver } from "./support/receiver.ts";
import { useReceiver } from "./support/rig.ts";
import { attr, sum, type } from "./support/spans.ts";

const LANGFUSE_TS = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const { runImport, createRuntime } = (langfuse as unknown as { internals: Internals }).internals;
const PROMPT = "Two commands: RUN<<echo one>> RUN<<cat /nonexistent-file>> SPAWN<<child RUN<<echo kid>>>>";

let mock: MockLlm;
let receiver: Receiver;
let spool: string;
useReceiver(started => (receiver = started));
beforeAll(async () => {
	mock = await startMockLlm();
});
afterAll(async () => {
	await mock.close();
});

const env = () => ({ LANGFUSE_PUBLIC_KEY: "pk-lf-test", LANGFUSE_SECRET_KEY: "sk-lf-test", LANGFUSE_HOST: receiver.url, LANGFUSE_SPOOL_DIR: spool });

/** Trace and observation ids the receiver holds ("session trace/observation"), with each one's type and how often it came. */
function snapshot() {
	const ids = new Map<string, { kind: string; times: number }>();
	for (const span of receiver.spans) {
		const key = `${attr(span, "session.id")} ${span.traceId}/${span.spanId}`;
		const kind = span.name === "compaction" ? "compaction" : String(type(span));
		ids.set(key, { kind, times: (ids.get(key)?.times ?? 0) + 1 });
	}
	return ids;
}

async function importRecord(path: string) {
	const runtime = createRuntime(env(), { exitHook: false, replaySpool: false, write: () => {} });
	try {
		return await runImport(runtime, { paths: [path] });
	} finally {
		runtime.exporter?.stop();
	}
}

const cases = [
	["omp", (e: Record<string, string>) => runOmp({ prompt: PROMPT, mockUrl: mock.url, extensions: [LANGFUSE_TS], env: e, timeoutMs: 90_000 }), 2],
	// compactions: omp's soft compaction after every call (the config of test/fixtures/import/record.ts)
	["omp-compaction", (e: Record<string, string>) => runOmp({ prompt: "Two commands: RUN<<echo one>> RUN<<cat /nonexistent-file>>", mockUrl: mock.url, extensions: [LANGFUSE_TS], env: e, timeoutMs: 90_000, config: { compaction: { thresholdTokens: 1000, keepRecentTokens: 50, methodOrder: ["soft"] } } }), 1],
	["pi", (e: Record<string, string>) => runPi({ prompt: PROMPT, mockUrl: mock.url, extensions: [LANGFUSE_TS], env: e, timeoutMs: 90_000 }), 1],
	["opencode", (e: Record<string, string>) => runOpencode({ prompt: PROMPT, mockUrl: mock.url, pluginFile: LANGFUSE_TS, env: e, timeoutMs: 90_000 }), 2],
] as const;

for (const [host, run, sessions] of cases) {
	describe(`${host}: traced live, then imported`, () => {
		test(
			"still one trace per prompt, and the import adds no observation the live run did not have",
			async () => {
				await receiver.reset();
				mock.reset();
				spool = mkdtempSync(join(tmpdir(), "lf-spool-"));
				const result = await run(env());
				try {
					expect(result.code).toBe(0);
					await receiver.waitFor(() => receiver.spans.some(span => attr(span, "session.id") === result.sessionId && attr(span, "langfuse.trace.output") !== undefined), 15_000);
					// a subagent (omp, OpenCode) is a session of its own, as live
					await receiver.waitFor(() => new Set(receiver.spans.map(span => attr(span, "session.id"))).size === sessions, 15_000);
					const live = snapshot();
					const liveTraces = new Set([...live.keys()].map(key => key.split("/")[0]));
					expect(liveTraces.size).toBe(sessions);
					const requestsBefore = receiver.requests.length;

					const record = "dbFile" in result ? result.dbFile : dirname(result.sessionFile!);
					const imported = await importRecord(record);
					expect(imported.problems).toEqual([]);
					expect(imported.traces).toBe(sessions);
					expect(receiver.requests.length).toBeGreaterThan(requestsBefore);
					const after = snapshot();
					const added = [...after.keys()].filter(key => !live.has(key));
					expect(added).toEqual([]);
					// every prompt, turn, generation, tool and compaction the live run sent was sent again by the import, same ids
					const liveCalls = [...live].filter(([, { kind }]) => kind === "generation" || kind === "tool" || kind === "compaction");
					expect(liveCalls.filter(([, { kind }]) => kind === "generation").length).toBe(sum(result.sessions.map(s => ("assistants" in s ? s.assistants.length : s.messages.filter(m => m.role === "assistant").length))));
					if (host === "omp-compaction") expect(liveCalls.filter(([, { kind }]) => kind === "compaction").length).toBeGreaterThan(0);
					const updated = [...live].filter(([key, { times }]) => after.get(key)!.times > times);
					expect(updated.length).toBe(imported.observations);
					for (const [key] of liveCalls) expect(after.get(key)!.times).toBeGreaterThan(live.get(key)!.times);
				} finally {
					result.cleanup();
					rmSync(spool, { recursive: true, force: true });
				}
			},
			180_000,
		);
	});
}
