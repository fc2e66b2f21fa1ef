/**
 * Helpers over node-sql-parser's AST, whose shapes differ between dialect grammars
 * (`column: 'x'` in one, `column: { expr: { value: 'x' } }` in another). Nothing here trusts a
 * shape: unknown shapes give `undefined`, and callers fall back to a generic walk.
 */

export type AstNode = Record<string, unknown>;

export function isNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function nodeType(value: unknown): string | undefined {
  return isNode(value) && typeof value.type === 'string' ? value.type : undefined;
}

/** The text of an identifier in any of the grammars' shapes. */
export function identText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (!isNode(value)) return undefined;
  if (typeof value.value === 'string') return value.value;
  if (isNode(value.expr)) return identText(value.expr);
  return undefined;
}

/** The last part of a function name (`pg_catalog."PG_READ_FILE"` → `PG_READ_FILE`). */
export function functionName(node: AstNode): string | undefined {
  const name = node.name;
  if (typeof name === 'string') return name;
  if (isNode(name)) {
    const parts = name.name;
    if (Array.isArray(parts) && parts.length > 0) return identText(parts[parts.length - 1]);
    return identText(name);
  }
  return undefined;
}

/** The start offset of a node, when the grammar recorded one. */
export function nodeOffset(node: AstNode): number | undefined {
  const loc = node.loc;
  if (isNode(loc) && isNode(loc.start) && typeof loc.start.offset === 'number') return loc.start.offset;
  return undefined;
}

/** A wrapped sub-statement (`{ ast: {...} }` in expressions, FROM items and CTEs). */
export function subStatement(value: unknown): AstNode | undefined {
  if (!isNode(value)) return undefined;
  if (isNode(value.ast) && typeof value.ast.type === 'string') return value.ast;
  return undefined;
}

/** Visits every object in the tree, parents before children, with the key it hangs from. */
export function walkAst(
  root: unknown,
  visit: (node: AstNode, key: string, parent: AstNode | undefined) => void,
): void {
  const seen = new Set<object>();
  const go = (value: unknown, key: string, parent: AstNode | undefined): void => {
    if (Array.isArray(value)) {
      for (const item of value) go(item, key, parent);
      return;
    }
    if (!isNode(value) || seen.has(value)) return;
    seen.add(value);
    visit(value, key, parent);
    for (const [k, v] of Object.entries(value)) {
      if (k === 'loc') continue;
      if (typeof v === 'object' && v !== null) go(v, k, value);
    }
  };
  go(root, '', undefined);
}
