/**
 * One line about an error for an operator or a client: its code and first message line, with any
 * URL (which may carry credentials) replaced, never a stack.
 */
export function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string; errors?: { code?: string }[] };
  const code = e.code ?? e.errors?.[0]?.code;
  const text = (e.message ?? String(err)).split('\n')[0]!.replace(/\w+:\/\/\S+/g, '[url]');
  const line = code && !text.includes(code) ? `${code} ${text}`.trim() : text || 'unknown error';
  return line.slice(0, 200);
}
