// Mock of the Anthropic Messages API, enough to run the real `claude` binary (Claude Code) offline.
// Ported from /work/shared/probes/claude/mock-anthropic.mjs; Bun.serve on 127.0.0.1, port 0 by default.
//
// POST /v1/messages (SSE when `stream: true`, JSON otherwise) answers by looking at the request:
//   - no tools offered (side calls: title, summary)            -> "Mock side answer", end_turn
//   - the last non-system message holds a tool_result          -> "Done. The tool said: <result>", end_turn
//   - the last user text holds "<task-notification>"           -> "Noted: the background agent finished.", end_turn
//   - the last user text holds "SPAWN" and Agent/Task offered  -> text + Agent tool_use (a subagent whose prompt
//                                                                 makes it run Bash itself)
//   - the last user text holds "FAIL" and Bash offered         -> text + Bash tool_use of a command that fails
//   - otherwise, Bash offered                                  -> text + Bash tool_use {command: "echo hi"}
//   - the last user text holds "TWICE" and Bash offered        -> text + TWO Bash tool_use blocks in one response
//                                                                 (echo hi, echo ho: parallel tool calls)
//   - "THINK" in the last user text adds a thinking block (with signature) in front of the answer, and the usage
//     reports output_tokens_details.thinking_tokens 5 (part of output_tokens, as Anthropic counts them).
// Claude Code appends role:"system" messages (reminders) after tool results; they are skipped when looking
// for the last message.
//
// Usage of response n (1-based, counted per mock process): input 10+n, output 20+n, cache read 2000+n,
// cache write 1000+n split as 5m: 300, 1h: 700+n — so every call and both TTLs are distinguishable.
// Ids: msg_mock_<run>_<n>, toolu_mock_<run>_<n>, request-id req_mock_<run>_<n>, <run> random per mock process:
// a resumed session replays earlier tool_use ids, and Claude Code treats a repeated tool_use id as a broken
// history, so ids must not repeat across mock restarts.
// POST /v1/messages/count_tokens -> {input_tokens: 42}. Anything else -> 404.
import { appendFileSync } from "node:fs";

export interface MockAnthropicOptions {
	/** Port on 127.0.0.1 (default 0 = random free port). */
	port?: number;
	/** Delay between SSE events (default 2 ms). */
	chunkDelayMs?: number;
	/** The Bash command asked for (default "echo hi"). */
	toolCommand?: string;
	/** The Bash command asked for on "FAIL" (default: reads a file that does not exist, exit code 1). */
	failCommand?: string;
	/** true: the Agent call leaves run_in_background out, so Claude Code runs the subagent in the background. */
	agentBackground?: boolean;
	/** Append one JSON line per request to this file. */
	logFile?: string;
	/** The next `times` (default 1) /v1/messages calls WITH tools answer this HTTP error (e.g. 400 invalid_request_error, 529 overloaded_error). */
	failNext?: { status: number; type?: string; message?: string; times?: number };
}

export type AnthropicKind = "error" | "twice" | "side" | "final" | "notification" | "agent" | "bash" | "fail" | "nobash" | "count_tokens" | "404";

export interface AnthropicUsage {
	input_tokens: number;
	output_tokens: number;
	cache_read_input_tokens: number;
	cache_creation_input_tokens: number;
	cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
}

export interface AnthropicRequest {
	at: number;
	method: string;
	path: string;
	kind: AnthropicKind;
	/** 1-based response number (only for answered /v1/messages calls). */
	n?: number;
	messageId?: string;
	toolUseId?: string;
	toolName?: string;
	usage?: AnthropicUsage;
	stream?: boolean;
	model?: string;
	headers: Record<string, string>;
	body: unknown;
}

export interface MockAnthropic {
	/** Base URL for ANTHROPIC_BASE_URL, e.g. http://127.0.0.1:40123 (Claude Code appends /v1/messages). */
	url: string;
	port: number;
	/** Random per mock process; part of every id. */
	runId: string;
	requests: AnthropicRequest[];
	/** Answered /v1/messages calls. */
	messageCalls(): AnthropicRequest[];
	setOptions(o: Partial<MockAnthropicOptions>): void;
	close(): void;
}

type Block =
	| { type: "text"; text: string }
	| { type: "thinking"; thinking: string; signature: string }
	| { type: "tool_use"; id: string; name: string; input: Record<string, unknown> };

interface Plan {
	content: Block[];
	stop: string;
	kind: AnthropicKind;
}

interface WireMessage {
	role?: string;
	content?: unknown;
}

/** usage of response n; exported so tests can compute expected sums. */
export function anthropicUsageFor(n: number): AnthropicUsage {
	return {
		input_tokens: 10 + n,
		output_tokens: 20 + n,
		cache_read_input_tokens: 2000 + n,
		cache_creation_input_tokens: 1000 + n,
		cache_creation: { ephemeral_5m_input_tokens: 300, ephemeral_1h_input_tokens: 700 + n },
	};
}

const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms));

function blocksOf(content: unknown): Record<string, unknown>[] {
	if (typeof content === "string") return [{ type: "text", text: content }];
	return Array.isArray(content) ? (content.filter(b => b && typeof b === "object") as Record<string, unknown>[]) : [];
}

function textOf(msg: WireMessage | undefined): string {
	return blocksOf(msg?.content)
		.filter(b => b.type === "text")
		.map(b => String(b.text ?? ""))
		.join("\n");
}

function toolResultText(block: Record<string, unknown>): string {
	const c = block.content;
	if (typeof c === "string") return c;
	return blocksOf(c)
		.map(b => String(b.text ?? ""))
		.join("");
}

export async function startMockAnthropic(opts: MockAnthropicOptions = {}): Promise<MockAnthropic> {
	let o: MockAnthropicOptions = { ...opts };
	let n = 0;
	const runId = Math.random().toString(36).slice(2, 8);
	const requests: AnthropicRequest[] = [];
	const log = (r: AnthropicRequest) => {
		requests.push(r);
		if (o.logFile) {
			try {
				appendFileSync(o.logFile, JSON.stringify(r) + "\n");
			} catch {
				/* logging is best effort */
			}
		}
	};

	function plan(body: Record<string, unknown>): Plan {
		const tools = (Array.isArray(body.tools) ? body.tools : []).map(t => String((t as { name?: string }).name ?? "")).filter(Boolean);
		const msgs = (Array.isArray(body.messages) ? body.messages : []) as WireMessage[];
		const last = [...msgs].reverse().find(m => m.role !== "system");
		if (!tools.length) return { content: [{ type: "text", text: "Mock side answer" }], stop: "end_turn", kind: "side" };
		const result = blocksOf(last?.content).find(b => b.type === "tool_result");
		if (result)
			return { content: [{ type: "text", text: `Done. The tool said: ${toolResultText(result).trim().slice(0, 200)}` }], stop: "end_turn", kind: "final" };
		const text = textOf([...msgs].reverse().find(m => m.role === "user"));
		const think: Block[] = text.includes("THINK") ? [{ type: "thinking", thinking: "Let me think about this.", signature: `sig_mock_${runId}_${n}` }] : [];
		if (text.includes("<task-notification>"))
			return { content: [...think, { type: "text", text: "Noted: the background agent finished." }], stop: "end_turn", kind: "notification" };
		const agentTool = tools.find(t => t === "Agent" || t === "Task");
		const cmd = o.toolCommand ?? "echo hi";
		if (text.includes("SPAWN") && agentTool)
			return {
				content: [
					...think,
					{ type: "text", text: "I'll delegate this to a subagent." },
					{
						type: "tool_use",
						id: `toolu_mock_${runId}_${n}`,
						name: agentTool,
						input: {
							description: "Run echo hi",
							prompt: `Run the shell command \`${cmd}\` with Bash and report what it printed.`,
							subagent_type: "general-purpose",
							...(o.agentBackground ? {} : { run_in_background: false }),
						},
					},
				],
				stop: "tool_use",
				kind: "agent",
			};
		if (tools.includes("Bash") && text.includes("TWICE"))
			return {
				content: [
					...think,
					{ type: "text", text: "I'll run two commands." },
					{ type: "tool_use", id: `toolu_mock_${runId}_${n}a`, name: "Bash", input: { command: "echo hi", description: "Print hi" } },
					{ type: "tool_use", id: `toolu_mock_${runId}_${n}b`, name: "Bash", input: { command: "echo ho", description: "Print ho" } },
				],
				stop: "tool_use",
				kind: "twice",
			};
		if (tools.includes("Bash")) {
			const fail = text.includes("FAIL");
			return {
				content: [
					...think,
					{ type: "text", text: "I'll run the command." },
					{
						type: "tool_use",
						id: `toolu_mock_${runId}_${n}`,
						name: "Bash",
						input: { command: fail ? (o.failCommand ?? "cat /nonexistent-lf-mock/missing.txt") : cmd, description: fail ? "Read a missing file" : "Print hi" },
					},
				],
				stop: "tool_use",
				kind: fail ? "fail" : "bash",
			};
		}
		return { content: [{ type: "text", text: "No Bash tool offered." }], stop: "end_turn", kind: "nobash" };
	}

	function sse(body: Record<string, unknown>, p: Plan, u: AnthropicUsage): Response {
		const enc = new TextEncoder();
		const delay = o.chunkDelayMs ?? 2;
		const id = `msg_mock_${runId}_${n}`;
		const stream = new ReadableStream<Uint8Array>({
			async start(ctrl) {
				const send = async (event: string, data: unknown) => {
					ctrl.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
					if (delay) await sleep(delay);
				};
				await send("message_start", {
					type: "message_start",
					message: {
						id,
						type: "message",
						role: "assistant",
						model: body.model,
						content: [],
						stop_reason: null,
						stop_sequence: null,
						usage: { ...u, output_tokens: 1 },
					},
				});
				await send("ping", { type: "ping" });
				for (const [index, b] of p.content.entries()) {
					if (b.type === "text") {
						await send("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } });
						for (const piece of b.text.match(/.{1,8}/gs) ?? [""])
							await send("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: piece } });
					} else if (b.type === "thinking") {
						await send("content_block_start", { type: "content_block_start", index, content_block: { type: "thinking", thinking: "", signature: "" } });
						await send("content_block_delta", { type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: b.thinking } });
						await send("content_block_delta", { type: "content_block_delta", index, delta: { type: "signature_delta", signature: b.signature } });
					} else {
						await send("content_block_start", { type: "content_block_start", index, content_block: { type: "tool_use", id: b.id, name: b.name, input: {} } });
						const json = JSON.stringify(b.input);
						for (let i = 0; i < json.length; i += 16)
							await send("content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: json.slice(i, i + 16) } });
					}
					await send("content_block_stop", { type: "content_block_stop", index });
				}
				// with a thinking block, 5 of the output tokens are reported as thinking (Anthropic counts them in output_tokens)
				const thinking = p.content.some(b => b.type === "thinking") ? { output_tokens_details: { thinking_tokens: 5 } } : {};
				await send("message_delta", { type: "message_delta", delta: { stop_reason: p.stop, stop_sequence: null }, usage: { output_tokens: u.output_tokens, ...thinking } });
				await send("message_stop", { type: "message_stop" });
				ctrl.close();
			},
		});
		return new Response(stream, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": `req_mock_${runId}_${n}` } });
	}

	const server = Bun.serve({
		hostname: "127.0.0.1",
		port: opts.port ?? 0,
		idleTimeout: 60,
		async fetch(req) {
			const path = new URL(req.url).pathname;
			const headers: Record<string, string> = {};
			req.headers.forEach((v, k) => {
				if (/^(anthropic-|user-agent|x-app|x-claude|content-type)/.test(k)) headers[k] = v;
			});
			let body: Record<string, unknown> = {};
			try {
				const raw = await req.text();
				body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
			} catch {
				/* not JSON */
			}
			const base = { at: Date.now(), method: req.method, path, headers, body };
			if (req.method === "POST" && path === "/v1/messages/count_tokens") {
				log({ ...base, kind: "count_tokens" });
				return Response.json({ input_tokens: 42 });
			}
			if (req.method !== "POST" || path !== "/v1/messages") {
				log({ ...base, kind: "404" });
				return Response.json({ type: "error", error: { type: "not_found_error", message: "mock: not found" } }, { status: 404 });
			}
			const fail = o.failNext;
			if (fail && (fail.times ?? 1) > 0 && Array.isArray(body.tools) && body.tools.length) {
				o.failNext = { ...fail, times: (fail.times ?? 1) - 1 };
				log({ ...base, kind: "error" });
				const type = fail.type ?? (fail.status === 529 ? "overloaded_error" : fail.status >= 500 ? "api_error" : "invalid_request_error");
				return Response.json({ type: "error", error: { type, message: fail.message ?? `mock: ${type}` } }, { status: fail.status, headers: { "request-id": `req_mock_${runId}_err` } });
			}
			n++;
			const p = plan(body);
			const u = anthropicUsageFor(n);
			const tool = p.content.find(b => b.type === "tool_use");
			log({
				...base,
				kind: p.kind,
				n,
				messageId: `msg_mock_${runId}_${n}`,
				toolUseId: tool?.type === "tool_use" ? tool.id : undefined,
				toolName: tool?.type === "tool_use" ? tool.name : undefined,
				usage: u,
				stream: body.stream === true,
				model: typeof body.model === "string" ? body.model : undefined,
			});
			if (body.stream === true) return sse(body, p, u);
			return Response.json(
				{ id: `msg_mock_${runId}_${n}`, type: "message", role: "assistant", model: body.model, content: p.content, stop_reason: p.stop, stop_sequence: null, usage: u },
				{ headers: { "request-id": `req_mock_${runId}_${n}` } },
			);
		},
	});
	const port = server.port as number;
	return {
		url: `http://127.0.0.1:${port}`,
		port,
		runId,
		requests,
		messageCalls: () => requests.filter(r => r.n !== undefined),
		setOptions(x) {
			o = { ...o, ...x };
		},
		close() {
			server.stop(true);
		},
	};
}
