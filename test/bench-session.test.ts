// The session benchmark's synthetic session has the shape issue 11 specifies (no timing here).
import { describe, expect, test } from "bun:test";
import * as path from "node:path";
// @ts-expect-error plain JS module (runs unchanged under Node 20 and Bun)
import { loadTemplate, sessionEvents, toolOutputBytes } from "./bench-session/session.mjs";

const template = loadTemplate(path.join(import.meta.dir, "fixtures/pi-two-tools.jsonl"));

describe("bench session", () => {
	const lines = [...sessionEvents(template, { prompts: 100 })] as { type: string; event: any; ctx: any }[];
	const count = (type: string) => lines.filter(line => line.type === type).length;

	test("100 prompts of 3 LLM calls and 2 tool calls each, in pi's event order", () => {
		expect(count("agent_start")).toBe(100);
		expect(count("agent_end")).toBe(100);
		expect(count("turn_start")).toBe(300);
		expect(count("before_provider_request")).toBe(300);
		expect(lines.filter(line => line.type === "message_end" && line.event.message.role === "assistant").length).toBe(300);
		expect(count("tool_execution_start")).toBe(200);
		expect(count("tool_execution_end")).toBe(200);
		expect(lines[0]!.type).toBe("session_start");
		expect(lines.at(-1)!.type).toBe("session_shutdown");
		// turn n ≥ 1 announces its request before turn_start, as the recorded pi does
		const firstPrompt = lines.slice(0, lines.findIndex(line => line.type === "agent_end"));
		expect(firstPrompt.filter(line => line.type === "turn_start" || line.type === "before_provider_request").map(line => line.type)).toEqual([
			"turn_start",
			"before_provider_request",
			"before_provider_request",
			"turn_start",
			"before_provider_request",
			"turn_start",
		]);
	});

	test("the fixture's system prompt, tools and model; one session id", () => {
		const request = lines.find(line => line.type === "before_provider_request")!.event.payload;
		expect(request.messages[0]).toEqual({ role: "system", content: template.systemPrompt });
		expect(request.tools.map((tool: any) => tool.function.name)).toEqual(["read", "bash", "edit", "write"]);
		expect(request.model).toBe("mock-model");
		expect(new Set(lines.map(line => line.ctx.sessionManager.getSessionId())).size).toBe(1);
	});

	test("tool outputs are 1–6 KB, every 10th 200 KB", () => {
		const sizes = lines.filter(line => line.type === "tool_execution_end").map(line => line.event.result.content[0].text.length);
		expect(sizes.length).toBe(200);
		sizes.forEach((size, k) => {
			const target = toolOutputBytes(k);
			if (k % 10 === 9) expect(target).toBe(200 * 1024);
			else expect(target >= 1024 && target <= 6 * 1024 + 512).toBe(true);
			expect(size).toBeGreaterThanOrEqual(target);
			expect(size).toBeLessThan(target + 200);
		});
		expect(new Set(lines.filter(line => line.type === "tool_execution_end").map(line => line.event.result.content[0].text)).size).toBe(200);
	});

	test("every LLM call gets the whole conversation: it grows until pi's compaction point, then restarts from a summary", () => {
		const requests = lines.filter(line => line.type === "before_provider_request").map(line => line.event.payload.messages);
		const sizes = requests.map(messages => JSON.stringify(messages).length);
		let grew = 0;
		let compactions = 0;
		for (let i = 1; i < requests.length; i++) {
			if (requests[i]!.length > requests[i - 1]!.length) grew++;
			else {
				compactions++;
				expect(requests[i]![1].content[0].text).toContain("compacted into the following summary");
			}
		}
		expect(grew).toBeGreaterThan(280);
		expect(compactions).toBeGreaterThanOrEqual(3);
		// bounded by the 128k-token window at 4 characters a token (plus JSON overhead)
		expect(Math.max(...sizes)).toBeLessThan(128_000 * 4 * 1.2);
		expect(sizes.reduce((sum, size) => sum + size, 0)).toBeGreaterThan(30_000_000);
		// each call's payload is converted afresh (new message objects), as pi's provider does
		expect(requests[1]![1]).not.toBe(requests[0]![1]);
		expect(requests[1]![1]).toEqual(requests[0]![1]);
	});
});
