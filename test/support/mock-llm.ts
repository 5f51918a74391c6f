// OpenAI-compatible mock LLM for end-to-end tests (Chat Completions + Responses API, SSE).
//
// Scripted by the prompt: the first user message may contain markers, in order:
//   RUN<<shell command>>   ask for one shell tool call running the command
//   SPAWN<<task text>>     ask omp's `task` tool to spawn a subagent with that task text
//                          (falls back to a shell `echo` when no `task` tool is offered)
// Each request is answered by counting the tool results already in the conversation:
// while markers remain -> a short text + ONE tool call for the next marker; afterwards ->
// the final text `DONE: <n> commands` (n = number of markers), streamed in several deltas.
// No markers -> `Hello from mock`. Title-generation requests -> a short title.
//
// Library: `startMockLlm(opts)`; standalone: `bun test/support/mock-llm.ts --port N`.
import { appendFileSync } from "node:fs";

export interface MockLlmOptions {
	/** Port to bind on 127.0.0.1 (default 0 = random free port). */
	port?: number;
	/** The first n POST requests answer 500. */
	failFirst?: number;
	/** Delay between SSE chunks (default 2 ms). */
	chunkDelayMs?: number;
	/** Hold every request this long before answering. */
	stallMs?: number;
	/** Append one JSON line per request to this file. */
	logFile?: string;
}

export type MockApi = "chat" | "responses" | "models" | "other";
export type MockKind = "tool" | "final" | "text" | "title" | "error" | "other";

export interface MockRequest {
	/** 0-based index over all requests. */
	index: number;
	at: number;
	method: string;
	path: string;
	api: MockApi;
	kind: MockKind;
	status: number;
	/** 0-based index of the model call (only for answered non-title model calls). */
	callIndex?: number;
	/** The tool the mock asked for, if any. */
	toolName?: string;
	toolArgs?: Record<string, unknown>;
	stream?: boolean;
	/** Usage the mock reported for this call. */
	usage?: MockUsage;
	headers: Record<string, string>;
	body: unknown;
}

export interface MockUsage {
	prompt: number;
	cached: number;
	completion: number;
	reasoning: number;
}

export interface MockLlm {
	/** Base URL ending in `/v1`, e.g. http://127.0.0.1:40123/v1 */
	url: string;
	port: number;
	requests: MockRequest[];
	/** Model calls answered (tool/final/text), titles and failures excluded. */
	modelCalls(): MockRequest[];
	/** Change options at runtime (failFirst restarts its count). */
	setOptions(o: Partial<Omit<MockLlmOptions, "port" | "logFile">>): void;
	reset(): void;
	close(): Promise<void>;
}

/** Deterministic usage of the model call with 0-based index i. */
export function usageFor(callIndex: number): MockUsage {
	return { prompt: 1000 + 100 * callIndex, cached: 200, completion: 50 + callIndex, reasoning: 0 };
}
export const TITLE_USAGE: MockUsage = { prompt: 50, cached: 0, completion: 5, reasoning: 0 };
export const TITLE_TEXT = "Mock session title";
export const PLAIN_TEXT = "Hello from mock";

export type ScriptStep = { type: "run"; command: string } | { type: "spawn"; task: string };

/**
 * Parse RUN<<...>> / SPAWN<<...>> markers. RUN ends at the first `>>`; SPAWN is balanced
 * (`<<` opens, `>>` closes), so SPAWN<<RUN<<echo hi>>>> nests a script for the subagent.
 */
export function parseScript(text: string): ScriptStep[] {
	const steps: ScriptStep[] = [];
	let i = 0;
	while (i < text.length) {
		const run = text.indexOf("RUN<<", i);
		const spawn = text.indexOf("SPAWN<<", i);
		if (run < 0 && spawn < 0) break;
		if (spawn >= 0 && (run < 0 || spawn < run)) {
			const start = spawn + 7;
			let depth = 1;
			let j = start;
			while (j < text.length && depth > 0) {
				if (text.startsWith("<<", j)) {
					depth++;
					j += 2;
				} else if (text.startsWith(">>", j)) {
					depth--;
					j += 2;
				} else j++;
			}
			if (depth > 0) break;
			steps.push({ type: "spawn", task: text.slice(start, j - 2) });
			i = j;
		} else {
			const start = run + 5;
			const end = text.indexOf(">>", start);
			if (end < 0) break;
			steps.push({ type: "run", command: text.slice(start, end) });
			i = end + 2;
		}
	}
	return steps;
}

type Json = Record<string, any>;

function textOf(content: unknown): string {
	if (typeof content === "string") return content;
	if (Array.isArray(content))
		return content
			.map((c: any) => (typeof c === "string" ? c : typeof c?.text === "string" ? c.text : ""))
			.join("\n");
	return "";
}

interface Conversation {
	userTexts: string[];
	systemText: string;
	toolResults: number;
	tools: { name: string; schema: Json | undefined }[];
}

function readChat(body: Json): Conversation {
	const msgs: Json[] = Array.isArray(body.messages) ? body.messages : [];
	return {
		userTexts: msgs.filter(m => m?.role === "user").map(m => textOf(m.content)),
		systemText: msgs
			.filter(m => m?.role === "system" || m?.role === "developer")
			.map(m => textOf(m.content))
			.join("\n"),
		toolResults: msgs.filter(m => m?.role === "tool").length,
		tools: (Array.isArray(body.tools) ? body.tools : []).map((t: Json) => ({
			name: String(t?.function?.name ?? t?.name ?? ""),
			schema: t?.function?.parameters ?? t?.parameters,
		})),
	};
}

function readResponses(body: Json): Conversation {
	const input: Json[] = Array.isArray(body.input)
		? body.input
		: typeof body.input === "string"
			? [{ role: "user", content: body.input }]
			: [];
	return {
		userTexts: input.filter(m => m?.role === "user").map(m => textOf(m.content)),
		systemText: [
			typeof body.instructions === "string" ? body.instructions : "",
			...input.filter(m => m?.role === "system" || m?.role === "developer").map(m => textOf(m.content)),
		].join("\n"),
		toolResults: input.filter(
			m =>
				m?.type === "function_call_output" ||
				m?.type === "custom_tool_call_output" ||
				m?.type === "local_shell_call_output",
		).length,
		tools: (Array.isArray(body.tools) ? body.tools : []).map((t: Json) => ({
			name: String(t?.name ?? t?.function?.name ?? t?.type ?? ""),
			schema: t?.parameters ?? t?.function?.parameters,
		})),
	};
}

function scriptOf(conv: Conversation): ScriptStep[] {
	// The first user message that carries a marker (Codex sends environment context as an
	// earlier user message); otherwise none.
	for (const t of conv.userTexts) {
		const s = parseScript(t);
		if (s.length) return s;
	}
	return [];
}

function isTitleRequest(conv: Conversation): boolean {
	if (conv.tools.length > 0) return false;
	const sys = conv.systemText.slice(0, 2000);
	return /title generator|generate a (short )?title|conversation title|session title|\btitle\b/i.test(sys);
}

/** Fill the required string/array fields of a tool schema, putting the command in `cmdKey`. */
function argsFromSchema(schema: Json | undefined, cmdKey: string, cmd: string): Json {
	const args: Json = {};
	const props: Json = schema?.properties ?? {};
	const cmdProp = props[cmdKey];
	args[cmdKey] = cmdProp?.type === "array" ? ["bash", "-lc", cmd] : cmd;
	for (const req of Array.isArray(schema?.required) ? schema.required : []) {
		if (req in args) continue;
		const p = props[req] ?? {};
		if (p.type === "string") args[req] = `run ${cmd}`.slice(0, 60);
		else if (p.type === "number" || p.type === "integer") args[req] = 60000;
		else if (p.type === "boolean") args[req] = false;
		else if (p.type === "array") args[req] = [];
	}
	return args;
}

interface ToolChoice {
	name: string;
	args: Json;
}

function chooseTool(step: ScriptStep, tools: Conversation["tools"]): ToolChoice | undefined {
	const byName = new Map(tools.map(t => [t.name, t]));
	const cmd = step.type === "run" ? step.command : `echo ${JSON.stringify(step.task)}`;
	const bash = byName.get("bash");
	if (bash) return { name: "bash", args: argsFromSchema(bash.schema, "command", cmd) };
	const exec = byName.get("exec_command");
	if (exec) return { name: "exec_command", args: argsFromSchema(exec.schema, "cmd", cmd) };
	const shell = byName.get("shell");
	if (shell) return { name: "shell", args: argsFromSchema(shell.schema, "command", cmd) };
	const sc = byName.get("shell_command");
	if (sc) return { name: "shell_command", args: argsFromSchema(sc.schema, "command", cmd) };
	return undefined;
}

function chooseSpawnTool(step: ScriptStep, tools: Conversation["tools"], n: number): ToolChoice | undefined {
	if (step.type !== "spawn") return chooseTool(step, tools);
	const task = tools.find(t => t.name === "task");
	if (task) {
		const props: Json = task.schema?.properties ?? {};
		if ("subagent_type" in props || "prompt" in props) {
			// OpenCode's task tool
			return {
				name: "task",
				args: { description: "Subagent task", prompt: step.task, subagent_type: "general" },
			};
		}
		if ("tasks" in props) {
			// omp 18.x batch form: {i, context, tasks: [{name?, agent?, task}]}
			return {
				name: "task",
				args: { i: "spawn a subagent", context: "Test run.", tasks: [{ name: `Child${n}`, task: step.task }] },
			};
		}
		// older omp single-task form
		return { name: "task", args: { agent: "task", task: step.task } };
	}
	return chooseTool(step, tools);
}

interface Plan {
	kind: MockKind;
	text: string[];
	tool?: ToolChoice;
}

function plan(conv: Conversation): Plan {
	if (isTitleRequest(conv)) return { kind: "title", text: [TITLE_TEXT] };
	const steps = scriptOf(conv);
	if (steps.length === 0) return { kind: "text", text: ["Hello ", "from ", "mock"] };
	const k = conv.toolResults;
	if (k < steps.length) {
		const step = steps[k];
		const tool = chooseSpawnTool(step, conv.tools, k + 1);
		if (tool) {
			const what = step.type === "run" ? `command ${k + 1}` : `subagent ${k + 1}`;
			return { kind: "tool", text: [`Running ${what}.`], tool };
		}
	}
	const n = steps.length;
	// omp subagents must finish by calling `yield`; do it once, right after the last marker.
	if (k === steps.length && conv.tools.some(t => t.name === "yield"))
		return {
			kind: "tool",
			text: [`DONE: ${n} commands`],
			tool: { name: "yield", args: { data: { result: `DONE: ${n} commands` } } },
		};
	return { kind: "final", text: ["DONE: ", `${n} `, "commands"] };
}

const sleep = (ms: number) => (ms > 0 ? Bun.sleep(ms) : Promise.resolve());
const enc = new TextEncoder();

function sseResponse(gen: AsyncGenerator<string>, reqId: string): Response {
	const stream = new ReadableStream({
		async pull(controller) {
			try {
				const { value, done } = await gen.next();
				if (done) controller.close();
				else controller.enqueue(enc.encode(value));
			} catch (e) {
				controller.error(e);
			}
		},
		async cancel() {
			await gen.return(undefined);
		},
	});
	return new Response(stream, {
		headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "x-request-id": reqId },
	});
}

function splitIn(s: string, parts: number): string[] {
	const k = Math.max(1, Math.ceil(s.length / parts));
	const out: string[] = [];
	for (let i = 0; i < s.length; i += k) out.push(s.slice(i, i + k));
	return out.length ? out : [""];
}

function chatUsage(u: MockUsage): Json {
	return {
		prompt_tokens: u.prompt,
		completion_tokens: u.completion,
		total_tokens: u.prompt + u.completion,
		prompt_tokens_details: { cached_tokens: u.cached },
		completion_tokens_details: { reasoning_tokens: u.reasoning },
	};
}

function responsesUsage(u: MockUsage): Json {
	return {
		input_tokens: u.prompt,
		input_tokens_details: { cached_tokens: u.cached },
		output_tokens: u.completion,
		output_tokens_details: { reasoning_tokens: u.reasoning },
		total_tokens: u.prompt + u.completion,
	};
}

async function* chatStream(model: string, n: number, p: Plan, u: MockUsage, delay: number): AsyncGenerator<string> {
	const base = { id: `chatcmpl-mock-${n}`, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model };
	const chunk = (o: Json) => `data: ${JSON.stringify({ ...base, ...o })}\n\n`;
	yield chunk({ choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] });
	for (const piece of p.text) {
		await sleep(delay);
		yield chunk({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] });
	}
	if (p.tool) {
		const args = JSON.stringify(p.tool.args);
		await sleep(delay);
		yield chunk({
			choices: [
				{
					index: 0,
					delta: { tool_calls: [{ index: 0, id: `call_mock_${n}`, type: "function", function: { name: p.tool.name, arguments: "" } }] },
					finish_reason: null,
				},
			],
		});
		for (const piece of splitIn(args, 3)) {
			await sleep(delay);
			yield chunk({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: piece } }] }, finish_reason: null }] });
		}
	}
	await sleep(delay);
	yield chunk({ choices: [{ index: 0, delta: {}, finish_reason: p.tool ? "tool_calls" : "stop" }] });
	yield chunk({ choices: [], usage: chatUsage(u) });
	yield "data: [DONE]\n\n";
}

function chatJson(model: string, n: number, p: Plan, u: MockUsage): Json {
	const message: Json = { role: "assistant", content: p.text.join("") };
	if (p.tool)
		message.tool_calls = [
			{ id: `call_mock_${n}`, type: "function", function: { name: p.tool.name, arguments: JSON.stringify(p.tool.args) } },
		];
	return {
		id: `chatcmpl-mock-${n}`,
		object: "chat.completion",
		created: Math.floor(Date.now() / 1000),
		model,
		choices: [{ index: 0, message, finish_reason: p.tool ? "tool_calls" : "stop" }],
		usage: chatUsage(u),
	};
}

function responsesOutput(n: number, p: Plan): Json[] {
	const out: Json[] = [];
	const text = p.text.join("");
	if (text)
		out.push({
			type: "message",
			id: `msg_mock_${n}`,
			role: "assistant",
			status: "completed",
			content: [{ type: "output_text", text, annotations: [] }],
		});
	if (p.tool)
		out.push({
			type: "function_call",
			id: `fc_mock_${n}`,
			call_id: `call_mock_${n}`,
			name: p.tool.name,
			arguments: JSON.stringify(p.tool.args),
			status: "completed",
		});
	return out;
}

function responseObject(model: string, n: number, status: string, output: Json[], usage?: MockUsage): Json {
	return {
		id: `resp_mock_${n}`,
		object: "response",
		created_at: Math.floor(Date.now() / 1000),
		status,
		model,
		output,
		...(usage ? { usage: responsesUsage(usage) } : {}),
	};
}

async function* responsesStream(model: string, n: number, p: Plan, u: MockUsage, delay: number): AsyncGenerator<string> {
	let seq = 0;
	const ev = (type: string, o: Json) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...o })}\n\n`;
	yield ev("response.created", { response: responseObject(model, n, "in_progress", []) });
	yield ev("response.in_progress", { response: responseObject(model, n, "in_progress", []) });
	const final = responsesOutput(n, p);
	let idx = 0;
	for (const item of final) {
		await sleep(delay);
		if (item.type === "message") {
			const id = item.id as string;
			const text = p.text.join("");
			yield ev("response.output_item.added", { output_index: idx, item: { ...item, status: "in_progress", content: [] } });
			yield ev("response.content_part.added", {
				item_id: id,
				output_index: idx,
				content_index: 0,
				part: { type: "output_text", text: "", annotations: [] },
			});
			for (const piece of p.text) {
				await sleep(delay);
				yield ev("response.output_text.delta", { item_id: id, output_index: idx, content_index: 0, delta: piece });
			}
			yield ev("response.output_text.done", { item_id: id, output_index: idx, content_index: 0, text });
			yield ev("response.content_part.done", {
				item_id: id,
				output_index: idx,
				content_index: 0,
				part: { type: "output_text", text, annotations: [] },
			});
			yield ev("response.output_item.done", { output_index: idx, item });
		} else {
			const id = item.id as string;
			yield ev("response.output_item.added", { output_index: idx, item: { ...item, arguments: "", status: "in_progress" } });
			for (const piece of splitIn(item.arguments as string, 3)) {
				await sleep(delay);
				yield ev("response.function_call_arguments.delta", { item_id: id, output_index: idx, delta: piece });
			}
			yield ev("response.function_call_arguments.done", { item_id: id, output_index: idx, arguments: item.arguments });
			yield ev("response.output_item.done", { output_index: idx, item });
		}
		idx++;
	}
	await sleep(delay);
	yield ev("response.completed", { response: responseObject(model, n, "completed", final, u) });
}

export async function startMockLlm(opts: MockLlmOptions = {}): Promise<MockLlm> {
	let failLeft = opts.failFirst ?? 0;
	let chunkDelay = opts.chunkDelayMs ?? 2;
	let stall = opts.stallMs ?? 0;
	let callCounter = 0;
	const requests: MockRequest[] = [];

	const record = (r: MockRequest) => {
		requests.push(r);
		if (opts.logFile) {
			try {
				appendFileSync(opts.logFile, JSON.stringify(r) + "\n");
			} catch {
				/* ignore */
			}
		}
	};

	const server = Bun.serve({
		hostname: "127.0.0.1",
		port: opts.port ?? 0,
		idleTimeout: 120,
		async fetch(req) {
			const url = new URL(req.url);
			const path = url.pathname;
			const headers: Record<string, string> = {};
			req.headers.forEach((v, k) => {
				headers[k] = k === "authorization" ? v.slice(0, 16) + "…" : v;
			});
			const index = requests.length;
			const rec: MockRequest = {
				index,
				at: Date.now(),
				method: req.method,
				path,
				api: "other",
				kind: "other",
				status: 200,
				headers,
				body: undefined,
			};
			let body: Json | undefined;
			if (req.method === "POST") {
				const text = await req.text();
				try {
					body = JSON.parse(text) as Json;
				} catch {
					rec.body = text;
				}
				if (body) rec.body = body;
			}
			if (stall > 0) await sleep(stall);

			if (req.method === "GET" && path.endsWith("/models")) {
				rec.api = "models";
				record(rec);
				return Response.json({
					object: "list",
					data: [
						{ id: "mock-model", object: "model", created: 0, owned_by: "mock" },
						{ id: "mock-resp-model", object: "model", created: 0, owned_by: "mock" },
					],
				});
			}
			const isChat = req.method === "POST" && path.endsWith("/chat/completions");
			const isResp = req.method === "POST" && path.endsWith("/responses");
			if (isChat) rec.api = "chat";
			if (isResp) rec.api = "responses";
			if (req.method === "POST" && failLeft > 0) {
				failLeft--;
				rec.kind = "error";
				rec.status = 500;
				record(rec);
				return Response.json({ error: { message: "mock overloaded", type: "server_error" } }, { status: 500 });
			}
			if ((!isChat && !isResp) || !body) {
				rec.status = 404;
				record(rec);
				return new Response("not found", { status: 404 });
			}
			const conv = isChat ? readChat(body) : readResponses(body);
			const p = plan(conv);
			rec.kind = p.kind;
			let usage = TITLE_USAGE;
			if (p.kind !== "title") {
				rec.callIndex = callCounter++;
				usage = usageFor(rec.callIndex);
			}
			rec.usage = usage;
			if (p.tool) {
				rec.toolName = p.tool.name;
				rec.toolArgs = p.tool.args;
			}
			const model = String(body.model ?? "mock-model");
			const n = index + 1;
			const stream = body.stream === true; // OpenAI semantics: both APIs default to non-streaming
			rec.stream = stream;
			record(rec);
			if (isChat) {
				if (!stream) return Response.json(chatJson(model, n, p, usage));
				return sseResponse(chatStream(model, n, p, usage, chunkDelay), `req_mock_${n}`);
			}
			if (!stream) return Response.json(responseObject(model, n, "completed", responsesOutput(n, p), usage));
			return sseResponse(responsesStream(model, n, p, usage, chunkDelay), `req_mock_${n}`);
		},
	});

	const port = server.port as number;
	return {
		url: `http://127.0.0.1:${port}/v1`,
		port,
		requests,
		modelCalls: () => requests.filter(r => r.callIndex !== undefined),
		setOptions(o) {
			if (o.failFirst !== undefined) failLeft = o.failFirst;
			if (o.chunkDelayMs !== undefined) chunkDelay = o.chunkDelayMs;
			if (o.stallMs !== undefined) stall = o.stallMs;
		},
		reset() {
			requests.length = 0;
			callCounter = 0;
		},
		async close() {
			await server.stop(true);
		},
	};
}

function argValue(args: string[], name: string): string | undefined {
	const i = args.indexOf(name);
	return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
	const args = process.argv.slice(2);
	const mock = await startMockLlm({
		port: Number(argValue(args, "--port") ?? 0),
		failFirst: Number(argValue(args, "--fail-first") ?? 0),
		chunkDelayMs: Number(argValue(args, "--chunk-delay") ?? 2),
		stallMs: Number(argValue(args, "--stall") ?? 0),
		logFile: argValue(args, "--log"),
	});
	console.log(`listening ${mock.url}`);
	const stop = () => {
		void mock.close().finally(() => process.exit(0));
	};
	process.on("SIGINT", stop);
	process.on("SIGTERM", stop);
}
