/** A response body as loosely typed JSON, for assertions in tests. */
// biome-ignore lint/suspicious/noExplicitAny: test assertions walk arbitrary JSON
export async function json(res: Response): Promise<any> {
  return res.json();
}
