// Smoke tests for the test infrastructure itself: receiver, mock LLM, host runners.
// Run: node_modules/.bin/bun test test/support
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { minimalEnv, runCodex, runOmp, runOpencode, runPi, runProcess, sumUsage, type RunResult } from "./hosts.ts";
import { parseScript, startMockLlm, usageFor, type MockLlm } from "./mock-llm.ts";
import { basicAuth, startReceiver, type Receiver } from "./receiver.ts";

type Json = Record<string, any>;

const TRACE = "0123456789abcdef0123456789abcdef";
const ROOT_SPAN = "0123456789abcdef";
const CHILD_SPAN = "fedcba9876543210";
const AUTH = basicAuth("pk-lf-test", "sk-lf-test");

function otlpSpan(over: Json = {}): Json {
	return {
		traceId: TRACE,
		spanId: ROOT_SPAN,
		name: "root",
		kind: 1,
		startTimeUnixNano: "1700000000000000000",
		endTimeUnixNano: "1700000001000000000",
		attributes: [
			{ key: "langfuse.trace.name", value: { stringValue: "t" } },
			{ key: "n.int", value: { intValue: "42" } },
			{ key: "n.double", value: { doubleValue: 1.5 } },
			{ key: "n.bool", value: { boolValue: true } },
			{ key: "langfuse.trace.tags", value: { arrayValue: { values: [{ stringValue: "a" }, { stringValue: "b" }] } } },
		],
		status: { code: 0 },
		...over,
	};
}

function otlpBody(spans: Json[]): Json {
	return {
		resourceSpans: [
			{
				resource: { attributes: [{ key: "service.name", value: { stringValue: "langfuse.ts" } }] },
				scopeSpans: [{ scope: { name: "langfuse.ts", version: "0.1.0" }, spans }],
			},
		],
	};
}

async function postOtlp(r: Receiver, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
	return fetch(r.otlpUrl, {
		method: "POST",
		headers: { "content-type": "application/json", authorization: AUTH, ...headers },
		body: typeof body === "string" ? body : body instanceof Uint8Array ? new Blob([body as Uint8Array<ArrayBuffer>]) : JSON.stringify(body),
	});
}

function ingestEvent(id: string, type = "trace-create"): Json {
	return { id, type, timestamp: new Date().toISOString(), body: { id: `obj-${id}`, name: "x" } };
}

async function postIngest(r: Receiver, body: unknown, auth = AUTH): Promise<Response> {
	return fetch(r.ingestionUrl, {
		method: "POST",
		headers: { "content-type": "application/json", authorization: auth },
		body: JSON.stringify(body),
	});
}

// ---------------------------------------------------------------- receiver

describe("receiver", () => {
	let r: Receiver;
	beforeAll(async () => {
		r = await startReceiver();
	});
	afterAll(async () => {
		await r.close();
	});

	test("decodes a hand-made OTLP request (plain and gzip)", async () => {
		await r.reset();
		const child = otlpSpan({ spanId: CHILD_SPAN, parentSpanId: ROOT_SPAN, name: "child", status: { code: 2, message: "boom" } });
		const res = await postOtlp(r, otlpBody([otlpSpan(), child]));
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({});
		const gz = Bun.gzipSync(new TextEncoder().encode(JSON.stringify(otlpBody([otlpSpan({ spanId: "00000000000000aa", name: "gz" })]))));
		const res2 = await postOtlp(r, gz, { "content-encoding": "gzip" });
		expect(res2.status).toBe(200);

		expect(r.spans.map(s => s.name)).toEqual(["root", "child", "gz"]);
		const [root, c, g] = r.spans;
		expect(root.parentSpanId).toBeUndefined();
		expect(root.startNs).toBe("1700000000000000000");
		expect(root.attributes).toEqual({ "langfuse.trace.name": "t", "n.int": 42, "n.double": 1.5, "n.bool": true, "langfuse.trace.tags": ["a", "b"] });
		expect(root.resource).toEqual({ "service.name": "langfuse.ts" });
		expect(root.scope).toEqual({ name: "langfuse.ts", version: "0.1.0" });
		expect(c.parentSpanId).toBe(ROOT_SPAN);
		expect(c.status).toEqual({ code: 2, message: "boom" });
		expect(root.requestIndex).toBe(0);
		expect(g.requestIndex).toBe(1);
		expect(r.requests[1]).toMatchObject({ method: "POST", path: "/api/public/otel/v1/traces", status: 200, authOk: true, gzip: true, accepted: 1 });
		expect(r.requests[1].bytes).toBe(gz.byteLength);
		expect(r.spanCountsById()).toEqual({ [ROOT_SPAN]: 1, [CHILD_SPAN]: 1, "00000000000000aa": 1 });
	});

	test("one invalid id or time rejects the whole request with 400", async () => {
		await r.reset();
		const bad: Json[] = [
			{ traceId: TRACE.toUpperCase() },
			{ traceId: TRACE.slice(2) },
			{ spanId: "0123456789abcdeg" },
			{ spanId: "0123456789ABCDEF" },
			{ parentSpanId: "123" },
			{ startTimeUnixNano: 1700000000000000000 },
			{ endTimeUnixNano: "1.7e18" },
		];
		for (const over of bad) {
			const res = await postOtlp(r, otlpBody([otlpSpan({ spanId: CHILD_SPAN, name: "good" }), otlpSpan(over)]));
			expect(res.status).toBe(400);
		}
		expect((await postOtlp(r, { nope: 1 })).status).toBe(400);
		expect((await postOtlp(r, "{not json")).status).toBe(400);
		expect(r.spans).toHaveLength(0);
		// empty parentSpanId is a root
		expect((await postOtlp(r, otlpBody([otlpSpan({ parentSpanId: "" })]))).status).toBe(200);
		expect(r.spans[0].parentSpanId).toBeUndefined();
	});

	test("auth: missing or wrong keys get 401; custom keys are enforced", async () => {
		await r.reset();
		expect((await postOtlp(r, otlpBody([otlpSpan()]), { authorization: "" })).status).toBe(401);
		expect((await postOtlp(r, otlpBody([otlpSpan()]), { authorization: basicAuth("pk-x", "sk-lf-1") })).status).toBe(401);
		expect((await postIngest(r, { batch: [] }, basicAuth("pk-lf-1", "nope"))).status).toBe(401);
		expect(r.requests.every(q => !q.authOk && q.status === 401)).toBe(true);
		expect(r.spans).toHaveLength(0);
		const strict = await startReceiver({ publicKey: "pk-lf-right", secretKey: "sk-lf-right" });
		try {
			const post = (pk: string, sk: string) =>
				fetch(strict.otlpUrl, { method: "POST", headers: { authorization: basicAuth(pk, sk), "content-type": "application/json" }, body: JSON.stringify(otlpBody([otlpSpan()])) });
			expect((await post("pk-lf-test", "sk-lf-test")).status).toBe(401);
			expect((await post("pk-lf-right", "sk-lf-right")).status).toBe(200);
		} finally {
			await strict.close();
		}
	});

	test("health and projects", async () => {
		await r.reset();
		const h = await fetch(`${r.url}/api/public/health`);
		expect(await h.json()).toEqual({ status: "OK", version: "3.x-test" });
		const p = await fetch(`${r.url}/api/public/projects`, { headers: { authorization: AUTH } });
		expect(await p.json()).toEqual({ data: [{ id: "proj-test", name: "test" }] });
		expect((await fetch(`${r.url}/api/public/projects`)).status).toBe(401);
	});

	test("legacy ingestion: 207, per-event validation, 400 on a non-batch body", async () => {
		await r.reset();
		const res = await postIngest(r, { batch: [ingestEvent("e1"), { id: "e2", type: "span-create", timestamp: "yesterday", body: {} }, ingestEvent("e3", "span-update")] });
		expect(res.status).toBe(207);
		const j = (await res.json()) as Json;
		expect(j.successes).toEqual([
			{ id: "e1", status: 201 },
			{ id: "e3", status: 201 },
		]);
		expect(j.errors).toHaveLength(1);
		expect(j.errors[0]).toMatchObject({ id: "e2", status: 400 });
		expect(r.events.map(e => e.id)).toEqual(["e1", "e3"]);
		expect((await postIngest(r, [ingestEvent("x")])).status).toBe(400);
		expect((await postIngest(r, { events: [] })).status).toBe(400);
	});

	test("mode {status, times}: fails n times then recovers; 429 carries Retry-After", async () => {
		await r.reset();
		await r.setMode({ status: 500, times: 2 });
		const codes: number[] = [];
		for (let i = 0; i < 3; i++) codes.push((await postOtlp(r, otlpBody([otlpSpan()]))).status);
		expect(codes).toEqual([500, 500, 200]);
		expect(r.mode).toBe("ok");
		expect(r.spans).toHaveLength(1);

		await r.setMode({ status: 429, times: 1, retryAfter: 7 });
		const limited = await postIngest(r, { batch: [ingestEvent("a")] });
		expect(limited.status).toBe(429);
		expect(limited.headers.get("retry-after")).toBe("7");
		expect((await postIngest(r, { batch: [ingestEvent("a")] })).status).toBe(207);

		for (const status of [503, 401, 403, 400] as const) {
			await r.setMode({ status });
			expect((await postOtlp(r, otlpBody([otlpSpan()]))).status).toBe(status);
			expect((await postOtlp(r, otlpBody([otlpSpan()]))).status).toBe(status); // no `times`: until changed
		}
		await r.setMode("ok");
		expect((await postOtlp(r, otlpBody([otlpSpan()]))).status).toBe(200);
	});

	test("mode {stallMs} holds requests", async () => {
		await r.reset();
		await r.setMode({ stallMs: 300 });
		const t0 = performance.now();
		expect((await postOtlp(r, otlpBody([otlpSpan()]))).status).toBe(200);
		expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
		await r.setMode("ok");
	});

	test('mode "down" refuses connections; "ok" brings it back on the same port', async () => {
		await r.reset();
		const port = r.port;
		await r.setMode("down");
		let refused = false;
		try {
			await fetch(`${r.url}/api/public/health`);
		} catch {
			refused = true;
		}
		expect(refused).toBe(true);
		await r.setMode("ok");
		expect(r.port).toBe(port);
		expect((await fetch(`${r.url}/api/public/health`)).status).toBe(200);
	});

	test('mode "legacy": OTLP 404, ingestion works', async () => {
		await r.reset();
		await r.setMode("legacy");
		expect((await postOtlp(r, otlpBody([otlpSpan()]))).status).toBe(404);
		expect((await postIngest(r, { batch: [ingestEvent("l1")] })).status).toBe(207);
		expect(((await (await fetch(`${r.url}/api/public/health`)).json()) as Json).version).toBe("2.x-test");
		await r.setMode("ok");
	});

	test("mode {partial207}: every second event fails once, succeeds when re-sent", async () => {
		await r.reset();
		await r.setMode({ partial207: true });
		const batch = ["p0", "p1", "p2", "p3"].map(id => ingestEvent(id));
		const j1 = (await (await postIngest(r, { batch })).json()) as Json;
		expect(j1.successes.map((s: Json) => s.id)).toEqual(["p0", "p2"]);
		expect(j1.errors.map((e: Json) => [e.id, e.status])).toEqual([
			["p1", 500],
			["p3", 500],
		]);
		const j2 = (await (await postIngest(r, { batch: [batch[1], batch[3]] })).json()) as Json;
		// p3 is at index 1 again but already failed once -> succeeds
		expect(j2.successes.map((s: Json) => s.id)).toEqual(["p1", "p3"]);
		expect(j2.errors).toEqual([]);
		expect(Object.keys(r.eventCountsById()).sort()).toEqual(["p0", "p1", "p2", "p3"]);
		await r.setMode("ok");
	});

	test("waitFor resolves when the predicate holds and throws on timeout", async () => {
		await r.reset();
		setTimeout(() => void postOtlp(r, otlpBody([otlpSpan()])), 50);
		const spans = await r.waitFor(s => s.length === 1, 2000);
		expect(spans[0].name).toBe("root");
		await postOtlp(r, otlpBody([otlpSpan()]));
		expect(r.spanCountsById()[ROOT_SPAN]).toBe(2);
		await expect(r.waitFor(s => s.length > 5, 100)).rejects.toThrow(/timed out/);
	});

	test("requestLog: one line per OTLP / ingestion POST as Langfuse's server replay reads it", async () => {
		const dir = mkdtempSync(join(tmpdir(), "lf-rcv-log-"));
		const log = join(dir, "requests.jsonl");
		const logged = await startReceiver({ requestLog: log });
		try {
			const body = otlpBody([otlpSpan()]);
			const gz = Bun.gzipSync(new TextEncoder().encode(JSON.stringify(body)));
			const headers = { "content-encoding": "gzip", "x-langfuse-ingestion-version": "4", "x-langfuse-sdk-name": "langfuse.ts", "x-other": "no" };
			expect((await postOtlp(logged, gz, headers)).status).toBe(200);
			expect((await postOtlp(logged, { resourceSpans: [{ scopeSpans: [{ spans: [otlpSpan({ spanId: "short" })] }] }] })).status).toBe(400);
			expect((await postIngest(logged, { batch: [ingestEvent("e1")] })).status).toBe(207);
			expect((await postIngest(logged, { batch: [] }, basicAuth("pk-x", "wrong"))).status).toBe(401); // never reached decoding
			await fetch(`${logged.url}/api/public/health`);
			const lines = readFileSync(log, "utf8").trim().split("\n").map(l => JSON.parse(l) as Json);
			expect(lines).toHaveLength(3);
			expect(lines[0]).toEqual({
				path: "/api/public/otel/v1/traces",
				headers: { "content-encoding": "gzip", "x-langfuse-ingestion-version": "4", "x-langfuse-sdk-name": "langfuse.ts" },
				body,
				bytes: gz.byteLength,
				status: 200,
			});
			expect(lines[1]).toMatchObject({ path: "/api/public/otel/v1/traces", headers: {}, status: 400 });
			expect(lines[1].body.resourceSpans[0].scopeSpans[0].spans[0].spanId).toBe("short");
			expect(lines[2]).toMatchObject({ path: "/api/public/ingestion", status: 207 });
			expect(lines[2].body.batch.map((e: Json) => e.id)).toEqual(["e1"]);
		} finally {
			await logged.close();
			rmSync(dir, { recursive: true, force: true });
		}
	});

	test("standalone: --port 0 --out file.jsonl --request-log req.jsonl", async () => {
		const dir = mkdtempSync(join(tmpdir(), "lf-rcv-"));
		const out = join(dir, "out.jsonl");
		const requestLog = join(dir, "requests.jsonl");
		const proc = Bun.spawn({
			cmd: [process.execPath, join(import.meta.dir, "receiver.ts"), "--port", "0", "--out", out, "--request-log", requestLog],
			stdout: "pipe",
			stderr: "inherit",
		});
		try {
			const reader = proc.stdout.getReader();
			let text = "";
			const deadline = Date.now() + 10_000;
			while (!text.includes("\n") && Date.now() < deadline) {
				const { value, done } = await reader.read();
				if (done) break;
				text += new TextDecoder().decode(value);
			}
			reader.releaseLock();
			const m = /^listening (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
			expect(m).not.toBeNull();
			const url = m![1];
			const res = await fetch(`${url}/api/public/otel/v1/traces`, { method: "POST", headers: { authorization: AUTH, "content-type": "application/json" }, body: JSON.stringify(otlpBody([otlpSpan()])) });
			expect(res.status).toBe(200);
			await fetch(`${url}/api/public/ingestion`, { method: "POST", headers: { authorization: AUTH }, body: JSON.stringify({ batch: [ingestEvent("s1")] }) });
			const lines = readFileSync(out, "utf8").trim().split("\n").map(l => JSON.parse(l) as Json);
			expect(lines.map(l => [l.record, l.name ?? l.id])).toEqual([
				["span", "root"],
				["event", "s1"],
			]);
			const requests = readFileSync(requestLog, "utf8").trim().split("\n").map(l => JSON.parse(l) as Json);
			expect(requests.map(l => [l.path, l.status])).toEqual([
				["/api/public/otel/v1/traces", 200],
				["/api/public/ingestion", 207],
			]);
			expect(requests[0].body).toEqual(otlpBody([otlpSpan()]));
		} finally {
			proc.kill("SIGTERM");
			await proc.exited;
			rmSync(dir, { recursive: true, force: true });
		}
	});
});

// ---------------------------------------------------------------- mock LLM

interface ChatResult {
	text: string;
	tool?: { name: string; args: Json };
	usage?: Json;
	chunks: number;
}

async function chatStream(url: string, body: Json): Promise<ChatResult> {
	const res = await fetch(`${url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, stream: true }) });
	expect(res.status).toBe(200);
	let text = "";
	let name = "";
	let args = "";
	let usage: Json | undefined;
	let chunks = 0;
	for (const line of (await res.text()).split("\n")) {
		if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
		const c = JSON.parse(line.slice(6)) as Json;
		chunks++;
		if (c.usage) usage = c.usage;
		const d = c.choices?.[0]?.delta ?? {};
		if (d.content) text += d.content;
		for (const tc of d.tool_calls ?? []) {
			if (tc.function?.name) name = tc.function.name;
			if (tc.function?.arguments) args += tc.function.arguments;
		}
	}
	return { text, tool: name ? { name, args: JSON.parse(args) as Json } : undefined, usage, chunks };
}

interface RespResult {
	text: string;
	deltas: number;
	tool?: { name: string; args: Json };
	usage?: Json;
}

async function responsesStream(url: string, body: Json): Promise<RespResult> {
	const res = await fetch(`${url}/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, stream: true }) });
	expect(res.status).toBe(200);
	const out: RespResult = { text: "", deltas: 0 };
	for (const line of (await res.text()).split("\n")) {
		if (!line.startsWith("data: ")) continue;
		const e = JSON.parse(line.slice(6)) as Json;
		if (e.type === "response.output_text.delta") {
			out.text += e.delta;
			out.deltas++;
		}
		if (e.type === "response.output_item.done" && e.item.type === "function_call") out.tool = { name: e.item.name, args: JSON.parse(e.item.arguments) as Json };
		if (e.type === "response.completed") out.usage = e.response.usage;
	}
	return out;
}

const SCRIPT = "Please RUN<<echo one>>RUN<<false>>";
const BASH_TOOL = { type: "function", function: { name: "bash", parameters: { type: "object", properties: { command: { type: "string" } }, required: ["command"] } } };

describe("mock LLM", () => {
	let mock: MockLlm;
	beforeAll(async () => {
		mock = await startMockLlm({ chunkDelayMs: 0 });
	});
	afterAll(async () => {
		await mock.close();
	});

	test("parses the script language", () => {
		expect(parseScript("x RUN<<echo one>> y RUN<<false>>")).toEqual([
			{ type: "run", command: "echo one" },
			{ type: "run", command: "false" },
		]);
		expect(parseScript("SPAWN<<child RUN<<echo kid>>>>RUN<<ls>>")).toEqual([
			{ type: "spawn", task: "child RUN<<echo kid>>" },
			{ type: "run", command: "ls" },
		]);
		expect(parseScript("nothing here")).toEqual([]);
	});

	test("chat completions: RUN<<echo one>>RUN<<false>> then DONE, with usage", async () => {
		mock.reset();
		const msgs: Json[] = [
			{ role: "system", content: "You are a coding agent." },
			{ role: "user", content: SCRIPT },
		];
		const r1 = await chatStream(mock.url, { model: "mock-model", messages: msgs, tools: [BASH_TOOL] });
		expect(r1.tool).toEqual({ name: "bash", args: { command: "echo one" } });
		expect(r1.text.length).toBeGreaterThan(0);
		expect(r1.usage).toEqual({ prompt_tokens: 1000, completion_tokens: 50, total_tokens: 1050, prompt_tokens_details: { cached_tokens: 200 }, completion_tokens_details: { reasoning_tokens: 0 } });
		msgs.push({ role: "assistant", content: r1.text, tool_calls: [{ id: "c1", type: "function", function: { name: "bash", arguments: "{}" } }] }, { role: "tool", tool_call_id: "c1", content: "one" });
		const r2 = await chatStream(mock.url, { model: "mock-model", messages: msgs, tools: [BASH_TOOL] });
		expect(r2.tool).toEqual({ name: "bash", args: { command: "false" } });
		msgs.push({ role: "assistant", content: r2.text }, { role: "tool", tool_call_id: "c2", content: "" });
		const r3 = await chatStream(mock.url, { model: "mock-model", messages: msgs, tools: [BASH_TOOL] });
		expect(r3.tool).toBeUndefined();
		expect(r3.text).toBe("DONE: 2 commands");
		expect(r3.chunks).toBeGreaterThanOrEqual(5); // role + ≥3 deltas + finish + usage
		expect(r3.usage?.prompt_tokens).toBe(1200);
		expect(mock.modelCalls().map(q => q.kind)).toEqual(["tool", "tool", "final"]);
		expect(mock.modelCalls().map(q => q.usage)).toEqual([usageFor(0), usageFor(1), usageFor(2)]);
	});

	test("chat completions: non-stream, plain text, title, required schema fields", async () => {
		mock.reset();
		const res = await fetch(`${mock.url}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }) });
		const j = (await res.json()) as Json;
		expect(j.choices[0].message.content).toBe("Hello from mock");
		expect(j.usage.prompt_tokens).toBe(1000);
		const title = await chatStream(mock.url, {
			model: "m",
			messages: [
				{ role: "system", content: "You are a title generator. You output ONLY a thread title." },
				{ role: "user", content: SCRIPT },
			],
		});
		expect(title.text).toBe("Mock session title");
		expect(mock.requests[1].kind).toBe("title");
		expect(mock.requests[1].callIndex).toBeUndefined();
		const needy = { type: "function", function: { name: "bash", parameters: { type: "object", properties: { command: { type: "string" }, description: { type: "string" } }, required: ["command", "description"] } } };
		const r = await chatStream(mock.url, { model: "m", messages: [{ role: "user", content: SCRIPT }], tools: [needy] });
		expect(r.tool?.args.command).toBe("echo one");
		expect(typeof r.tool?.args.description).toBe("string");
	});

	test("responses API: exec_command {cmd}, then DONE; usage in response.completed", async () => {
		mock.reset();
		const tools = [
			{ type: "function", name: "exec_command", parameters: { type: "object", properties: { cmd: { type: "string" } }, required: ["cmd"] } },
			{ type: "function", name: "write_stdin", parameters: { type: "object", properties: {} } },
		];
		const input: Json[] = [
			{ type: "message", role: "developer", content: [{ type: "input_text", text: "perms" }] },
			{ type: "message", role: "user", content: [{ type: "input_text", text: "<environment_context>cwd</environment_context>" }] },
			{ type: "message", role: "user", content: [{ type: "input_text", text: SCRIPT }] },
		];
		const r1 = await responsesStream(mock.url, { model: "mock-model", input, tools });
		expect(r1.tool).toEqual({ name: "exec_command", args: { cmd: "echo one" } });
		expect(r1.usage).toEqual({ input_tokens: 1000, input_tokens_details: { cached_tokens: 200 }, output_tokens: 50, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 1050 });
		input.push({ type: "function_call", call_id: "c1", name: "exec_command", arguments: "{}" }, { type: "function_call_output", call_id: "c1", output: "one" });
		const r2 = await responsesStream(mock.url, { model: "mock-model", input, tools });
		expect(r2.tool).toEqual({ name: "exec_command", args: { cmd: "false" } });
		input.push({ type: "function_call", call_id: "c2", name: "exec_command", arguments: "{}" }, { type: "function_call_output", call_id: "c2", output: "" });
		const r3 = await responsesStream(mock.url, { model: "mock-model", input, tools });
		expect(r3.tool).toBeUndefined();
		expect(r3.text).toBe("DONE: 2 commands");
		expect(r3.deltas).toBeGreaterThanOrEqual(3);
		expect(r3.usage?.input_tokens).toBe(1200);
		// a `shell` tool with an array command
		const shell = [{ type: "function", name: "shell", parameters: { type: "object", properties: { command: { type: "array", items: { type: "string" } } }, required: ["command"] } }];
		const r4 = await responsesStream(mock.url, { model: "m", input: [{ role: "user", content: "RUN<<ls>>" }], tools: shell });
		expect(r4.tool).toEqual({ name: "shell", args: { command: ["bash", "-lc", "ls"] } });
	});

	test("failFirst, stallMs, GET /models", async () => {
		const m = await startMockLlm({ failFirst: 2, stallMs: 100 });
		try {
			const post = () => fetch(`${m.url}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }) });
			const t0 = performance.now();
			expect([(await post()).status, (await post()).status, (await post()).status]).toEqual([500, 500, 200]);
			expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
			expect(m.modelCalls()).toHaveLength(1);
			const models = (await (await fetch(`${m.url}/models`)).json()) as Json;
			expect(models.data[0].id).toBe("mock-model");
		} finally {
			await m.close();
		}
	});
});

// ---------------------------------------------------------------- real hosts

const HOST_TIMEOUT = 60_000;
const TWO_RUNS = "Please run these. RUN<<echo one>>RUN<<false>>";

// omp/pi extension: Bun (omp) and Node via jiti (pi) — node: builtins only.
const EXTENSION = `import { appendFileSync } from "node:fs";
const NAMES = ["session_start", "agent_start", "turn_start", "tool_call", "tool_result", "message_end", "turn_end", "agent_end", "session_shutdown"];
export default function (pi: any) {
	const file = process.env.SUPPORT_EVENTS_FILE as string;
	for (const name of NAMES) pi.on(name, () => { try { appendFileSync(file, name + "\\n"); } catch {} return undefined; });
}
`;

// OpenCode plugin: exactly one export, a function returning a hooks object.
const PLUGIN = `import { appendFileSync } from "node:fs";
export default async function supportPlugin(_input: unknown) {
	const file = process.env.SUPPORT_EVENTS_FILE as string;
	const log = (n: string) => { try { appendFileSync(file, n + "\\n"); } catch {} };
	log("plugin-init");
	return {
		event: async ({ event }: { event: { type?: string } }) => log(String(event?.type)),
		"tool.execute.after": async (input: { tool?: string }) => log("tool.execute.after:" + input?.tool),
	};
}
`;

describe("hosts", () => {
	let mock: MockLlm;
	let dir: string;
	const runs: RunResult[] = [];
	beforeAll(async () => {
		mock = await startMockLlm();
		dir = mkdtempSync(join(tmpdir(), "lf-support-"));
		writeFileSync(join(dir, "events-ext.ts"), EXTENSION);
		writeFileSync(join(dir, "events-plugin.ts"), PLUGIN);
	});
	afterAll(async () => {
		await mock.close();
		for (const r of runs) r.cleanup();
		rmSync(dir, { recursive: true, force: true });
	});
	const lines = (f: string): string[] => (existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean) : []);
	const explain = (r: RunResult) => `code=${r.code} timedOut=${r.timedOut}\nstdout:${r.stdout.slice(-1500)}\nstderr:${r.stderr.slice(-3000)}`;

	test(
		"runOmp: two RUN markers, -e extension loaded, usages match the mock",
		async () => {
			mock.reset();
			const events = join(dir, "omp-events.txt");
			const r = await runOmp({ prompt: TWO_RUNS, mockUrl: mock.url, extensions: [join(dir, "events-ext.ts")], env: { SUPPORT_EVENTS_FILE: events }, timeoutMs: HOST_TIMEOUT });
			runs.push(r);
			expect(r.code, explain(r)).toBe(0);
			expect(r.stdout).toContain("DONE: 2 commands");
			expect(mock.modelCalls()).toHaveLength(3);
			const seen = lines(events);
			for (const n of ["session_start", "tool_call", "tool_result", "agent_end", "session_shutdown"]) expect(seen).toContain(n);
			expect(seen.filter(n => n === "tool_call")).toHaveLength(2);
			expect(r.sessionId).toMatch(/^[0-9a-f-]{36}$/);
			expect(r.session?.assistants.map(a => a.stopReason)).toEqual(["toolUse", "toolUse", "stop"]);
			const t = sumUsage(r.usages);
			const calls = mock.modelCalls().map(q => q.usage!);
			expect(t.input).toBe(calls.reduce((s, u) => s + u.prompt - u.cached, 0));
			expect(t.cacheRead).toBe(calls.reduce((s, u) => s + u.cached, 0));
			expect(t.output).toBe(calls.reduce((s, u) => s + u.completion, 0));
			expect(t.cost.total).toBeGreaterThan(0);
		},
		HOST_TIMEOUT + 10_000,
	);

	test(
		"runOmp: SPAWN<<…>> runs a subagent whose session is collected",
		async () => {
			mock.reset();
			const r = await runOmp({ prompt: "Delegate SPAWN<<child RUN<<echo kid>>>>", mockUrl: mock.url, timeoutMs: HOST_TIMEOUT });
			runs.push(r);
			expect(r.code, explain(r)).toBe(0);
			expect(r.stdout).toContain("DONE: 1 commands");
			expect(mock.modelCalls().map(q => q.toolName ?? q.kind)).toEqual(["task", "bash", "yield", "final"]);
			expect(r.sessions).toHaveLength(2);
			const child = r.sessions.find(s => s.parentSession);
			expect(child?.parentSession).toBe(r.sessionFile);
			expect(r.allUsages).toHaveLength(4);
		},
		HOST_TIMEOUT + 10_000,
	);

	test(
		"runPi: two RUN markers, installed extension auto-discovered, usages match",
		async () => {
			mock.reset();
			const events = join(dir, "pi-events.txt");
			const r = await runPi({ prompt: TWO_RUNS, mockUrl: mock.url, installExtension: join(dir, "events-ext.ts"), env: { SUPPORT_EVENTS_FILE: events }, timeoutMs: HOST_TIMEOUT });
			runs.push(r);
			expect(r.code, explain(r)).toBe(0);
			expect(r.stdout).toContain("DONE: 2 commands");
			expect(mock.modelCalls()).toHaveLength(3);
			const seen = lines(events);
			for (const n of ["session_start", "tool_call", "agent_end"]) expect(seen).toContain(n);
			expect(r.sessionId).toMatch(/^[0-9a-f-]{36}$/);
			expect(r.usages).toHaveLength(3);
			const calls = mock.modelCalls().map(q => q.usage!);
			expect(sumUsage(r.usages).input).toBe(calls.reduce((s, u) => s + u.prompt - u.cached, 0));
		},
		HOST_TIMEOUT + 10_000,
	);

	test(
		"runOpencode: two RUN markers, plugin loaded, session totals from OpenCode's store",
		async () => {
			mock.reset();
			const events = join(dir, "oc-events.txt");
			const r = await runOpencode({ prompt: TWO_RUNS, mockUrl: mock.url, pluginFile: join(dir, "events-plugin.ts"), env: { SUPPORT_EVENTS_FILE: events }, timeoutMs: HOST_TIMEOUT });
			runs.push(r);
			expect(r.code, explain(r)).toBe(0);
			expect(r.stdout).toContain("DONE: 2 commands");
			expect(mock.modelCalls()).toHaveLength(3); // + one title call, not counted
			expect(mock.requests.filter(q => q.kind === "title").length).toBeLessThanOrEqual(1);
			const seen = lines(events);
			for (const n of ["plugin-init", "session.created", "session.idle", "tool.execute.after:bash"]) expect(seen).toContain(n);
			expect(r.sessionId).toMatch(/^ses_/);
			const s = r.sessions.find(x => x.id === r.sessionId)!;
			const calls = mock.modelCalls().map(q => q.usage!);
			expect(s.tokens.input).toBe(calls.reduce((a, u) => a + u.prompt - u.cached, 0));
			expect(s.tokens.cacheRead).toBe(calls.reduce((a, u) => a + u.cached, 0));
			expect(s.messages.filter(m => m.role === "assistant")).toHaveLength(3);
		},
		HOST_TIMEOUT + 10_000,
	);

	test(
		"runCodex: two RUN markers, notify program runs, rollout token usage matches",
		async () => {
			mock.reset();
			const notifyFile = join(dir, "codex-notify.txt");
			const r = await runCodex({ prompt: TWO_RUNS, mockUrl: mock.url, notify: ["/bin/sh", "-c", `printf '%s\\n' "$1" >> '${notifyFile}'`, "notify"], timeoutMs: HOST_TIMEOUT });
			runs.push(r);
			expect(r.code, explain(r)).toBe(0);
			expect(r.stdout).toContain("DONE: 2 commands");
			expect(mock.modelCalls()).toHaveLength(3);
			expect(mock.modelCalls().map(q => q.toolName ?? q.kind)).toEqual(["exec_command", "exec_command", "final"]);
			// notify runs after the turn; give it a moment
			const deadline = Date.now() + 5000;
			while (lines(notifyFile).length === 0 && Date.now() < deadline) await Bun.sleep(50);
			const note = JSON.parse(lines(notifyFile)[0]) as Json;
			expect(note.type).toBe("agent-turn-complete");
			expect(note["last-assistant-message"]).toBe("DONE: 2 commands");
			expect(r.rolloutFiles).toHaveLength(1);
			expect(r.threadId).toBe(note["thread-id"]);
			expect(r.tokenUsages.map(u => u.input_tokens)).toEqual(mock.modelCalls().map(q => q.usage!.prompt));
			expect(r.lastAgentMessages).toEqual(["DONE: 2 commands"]);
		},
		HOST_TIMEOUT + 10_000,
	);

	test("minimal env: the caller's LANGFUSE_* does not leak, given vars do", async () => {
		const before = process.env.LANGFUSE_PUBLIC_KEY;
		process.env.LANGFUSE_PUBLIC_KEY = "pk-lf-leak";
		try {
			const root = mkdtempSync(join(tmpdir(), "lf-env-"));
			const p = await runProcess(["env"], { cwd: root, env: minimalEnv(root, root, { LANGFUSE_HOST: "http://x" }), logDir: root, timeoutMs: 5000 });
			rmSync(root, { recursive: true, force: true });
			expect(p.code).toBe(0);
			expect(p.stdout).not.toContain("pk-lf-leak");
			expect(p.stdout).toContain("LANGFUSE_HOST=http://x");
			expect(p.stdout).toMatch(/^PATH=.*node_modules\/\.bin:/m);
		} finally {
			if (before === undefined) delete process.env.LANGFUSE_PUBLIC_KEY;
			else process.env.LANGFUSE_PUBLIC_KEY = before;
		}
	});

	test(
		"abort signal and onSpawn: a test can kill the host",
		async () => {
			const m = await startMockLlm({ stallMs: 30_000 });
			try {
				const ac = new AbortController();
				let pid = 0;
				const r = await runCodex({
					prompt: "RUN<<echo x>>",
					mockUrl: m.url,
					timeoutMs: 20_000,
					signal: ac.signal,
					onSpawn: child => {
						pid = child.pid;
						setTimeout(() => ac.abort(), 300);
					},
				});
				runs.push(r);
				expect(pid).toBe(r.pid);
				expect(r.aborted).toBe(true);
				expect(r.timedOut).toBe(false);
				expect(r.signalCode).toBe("SIGKILL");
			} finally {
				await m.close();
			}
		},
		20_000,
	);

	test(
		"hard timeout kills the process group",
		async () => {
			const m = await startMockLlm({ stallMs: 30_000 });
			try {
				const r = await runCodex({ prompt: "RUN<<echo x>>", mockUrl: m.url, timeoutMs: 1500 });
				runs.push(r);
				expect(r.timedOut).toBe(true);
				expect(r.signalCode).toBe("SIGKILL");
				expect(r.ms).toBeLessThan(5000);
			} finally {
				await m.close();
			}
		},
		20_000,
	);
});
