/**
 * Issue 10 item 1, with real omp: two Langfuse projects on one machine share the user's spool folder
 * (the default one, as a new user has it). Project A's session runs while Langfuse is down, then a
 * session with project B's keys runs: B must get exactly its own trace, A's waits for a process with
 * A's keys and then arrives in A, complete and once.
 *
 * Two cases: the same Langfuse host with two projects (one receiver, told apart by the public key of
 * each request), and two hosts (two receivers, each accepting only its own keys — EU vs self-hosted).
 * Runs sequentially (the machine has two cores); one omp at a time.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runOmp, type AgentRunResult } from "./support/hosts.ts";
import { e2eRig } from "./support/rig.ts";
import { startReceiver, type ReceivedSpan, type Receiver } from "./support/receiver.ts";

const LANGFUSE_TS = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const A = { LANGFUSE_PUBLIC_KEY: "pk-lf-project-a", LANGFUSE_SECRET_KEY: "sk-lf-project-a-5e1c0b7d" };
const B = { LANGFUSE_PUBLIC_KEY: "pk-lf-project-b", LANGFUSE_SECRET_KEY: "sk-lf-project-b-93aa4f12" };
const PROMPT_A1 = "Project A first prompt";
const PROMPT_B = "Project B only prompt";
const PROMPT_A2 = "Project A second prompt";

const rig = e2eRig();
const { receivers, temporary, results } = rig;

/** One machine: every run shares this HOME-independent cache folder, so the default spool is shared. */
function machine(): { XDG_CACHE_HOME: string } {
	const cache = mkdtempSync(join(tmpdir(), "lf-projects-cache-"));
	temporary.push(cache);
	return { XDG_CACHE_HOME: cache };
}

async function omp(prompt: string, env: Record<string, string>): Promise<AgentRunResult> {
	const result = await runOmp({ prompt, mockUrl: rig.mock.url, extensions: [LANGFUSE_TS], env: { LANGFUSE_FLUSH_MS: "300", ...env }, timeoutMs: 60_000 });
	results.push(result);
	expect(result.code).toBe(0);
	expect(result.stdout).toContain("Hello from mock");
	return result;
}

/** The root span names (= the prompts) a list of spans carries, each once. */
const prompts = (spans: ReceivedSpan[]) => [...new Set(spans.filter(span => !span.parentSpanId).map(span => span.name))].sort();
/** Spans of one session, by spanId, latest version: a complete prompt is agent + turn + generation. */
const shapes = (spans: ReceivedSpan[], sessionId: string | undefined) =>
	[...new Map(spans.filter(span => span.attributes["session.id"] === sessionId).map(span => [span.spanId, String(span.attributes["langfuse.observation.type"])])).values()].sort();

describe("two projects, one Langfuse host: each project gets exactly its own traces after an outage", () => {
	let receiver: Receiver;
	let a1: AgentRunResult;
	let b: AgentRunResult;
	let a2: AgentRunResult;
	const spansOf = (publicKey: string) => receiver.spans.filter(span => receiver.requests[span.requestIndex]?.publicKey === publicKey);

	beforeAll(async () => {
		receiver = await startReceiver({ mode: "down" });
		receivers.push(receiver);
		const shared = machine();
		a1 = await omp(PROMPT_A1, { ...A, ...shared, LANGFUSE_HOST: receiver.url });
		await receiver.setMode("ok");
		b = await omp(PROMPT_B, { ...B, ...shared, LANGFUSE_HOST: receiver.url });
		// B's process has exited: everything it would ever send has arrived
		a2 = await omp(PROMPT_A2, { ...A, ...shared, LANGFUSE_HOST: receiver.url });
		await receiver.waitFor(() => prompts(spansOf(A.LANGFUSE_PUBLIC_KEY)).length >= 2, 5_000).catch(() => {});
	}, 240_000);

	test("project B receives its own trace and nothing of project A's", () => {
		expect(prompts(spansOf(B.LANGFUSE_PUBLIC_KEY))).toEqual([PROMPT_B]);
		expect(new Set(spansOf(B.LANGFUSE_PUBLIC_KEY).map(span => span.attributes["session.id"]))).toEqual(new Set([b.sessionId]));
	});

	test("project A receives both of its traces, the one from the outage complete", () => {
		expect(prompts(spansOf(A.LANGFUSE_PUBLIC_KEY))).toEqual([PROMPT_A1, PROMPT_A2].sort());
		expect(shapes(spansOf(A.LANGFUSE_PUBLIC_KEY), a1.sessionId)).toEqual(["agent", "generation", "span"]);
		expect(shapes(spansOf(A.LANGFUSE_PUBLIC_KEY), a2.sessionId)).toEqual(["agent", "generation", "span"]);
	});

	test("no request was refused and none was sent with a key it was not recorded for", () => {
		expect(receiver.requests.filter(request => request.status >= 400).map(request => `${request.status} ${request.error ?? ""}`)).toEqual([]);
		for (const span of receiver.spans) {
			const key = receiver.requests[span.requestIndex]?.publicKey;
			const sessionId = span.attributes["session.id"];
			expect(`${sessionId} → ${key}`).toBe(`${sessionId} → ${sessionId === b.sessionId ? B.LANGFUSE_PUBLIC_KEY : A.LANGFUSE_PUBLIC_KEY}`);
		}
	});
});

describe("two projects on two hosts: a batch is only ever sent to the host and project it was recorded for", () => {
	let hostA: Receiver;
	let hostB: Receiver;
	let a1: AgentRunResult;
	let b: AgentRunResult;

	beforeAll(async () => {
		hostA = await startReceiver({ mode: "down", publicKey: A.LANGFUSE_PUBLIC_KEY, secretKey: A.LANGFUSE_SECRET_KEY });
		hostB = await startReceiver({ publicKey: B.LANGFUSE_PUBLIC_KEY, secretKey: B.LANGFUSE_SECRET_KEY });
		receivers.push(hostA, hostB);
		const shared = machine();
		a1 = await omp(PROMPT_A1, { ...A, ...shared, LANGFUSE_HOST: hostA.url });
		b = await omp(PROMPT_B, { ...B, ...shared, LANGFUSE_HOST: hostB.url });
		await hostA.setMode("ok");
		await omp(PROMPT_A2, { ...A, ...shared, LANGFUSE_HOST: hostA.url });
		await hostA.waitFor(() => prompts(hostA.spans).length >= 2, 5_000).catch(() => {});
	}, 240_000);

	test("host B holds only project B's trace", () => {
		expect(prompts(hostB.spans)).toEqual([PROMPT_B]);
		expect(shapes(hostB.spans, b.sessionId)).toEqual(["agent", "generation", "span"]);
	});

	test("host A holds both of project A's traces once the next A process runs", () => {
		expect(prompts(hostA.spans)).toEqual([PROMPT_A1, PROMPT_A2].sort());
		expect(shapes(hostA.spans, a1.sessionId)).toEqual(["agent", "generation", "span"]);
	});
});
