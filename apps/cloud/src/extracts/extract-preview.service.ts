import { bindParameters, MIS_DIALECT, parseExtractDocument, resolveParameters } from '@keystage/extract-spec';
import { createConnector, isMisError, type QueryParam } from '@keystage/mis-connectors';
import { Inject, Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';

export interface PreviewRequest {
  document: string;
  dataset?: string | undefined;
  limit: number;
  parameters: Record<string, unknown>;
}

const PREVIEW_TIMEOUT_MS = 15_000;
const MAX_COUNTED_ROWS = 2_000_000;

/**
 * Runs a draft extract against the demo MIS, read-only, in this process: the first rows, the column
 * types, the row count and the time. The document goes through exactly the validation the agent
 * applies before it runs anything.
 */
@Injectable()
export class ExtractPreviewService {
  constructor(@Inject(CLOUD_CONFIG) private readonly config: CloudConfig) {}

  async preview(input: PreviewRequest) {
    const path = this.config.previewMisPath;
    if (!path)
      throw new AppError(
        'preview.unavailable',
        'no demo MIS is configured for previews (PREVIEW_MIS_PATH)',
        503,
      );
    const parsed = parseExtractDocument(input.document);
    if (!parsed.ok)
      throw new AppError(
        'extract.invalid',
        `the extract document has ${parsed.problems.length} problem(s)`,
        422,
        parsed.problems,
      );
    const doc = parsed.document;
    if (doc.mis !== 'DEMO_SQLITE') {
      throw new AppError(
        'preview.unsupported_mis',
        `previews run on the demo MIS (DEMO_SQLITE); this extract targets ${doc.mis}`,
        422,
      );
    }
    const dataset = input.dataset ? doc.datasets.find((d) => d.name === input.dataset) : doc.datasets[0];
    if (!dataset)
      throw new AppError('preview.unknown_dataset', `no dataset named "${input.dataset}"`, 422, {
        datasets: doc.datasets.map((d) => d.name),
      });
    const resolved = resolveParameters(doc.parameters, input.parameters, {
      today: new Date().toISOString().slice(0, 10),
    });
    if (!resolved.ok)
      throw new AppError(
        'preview.bad_parameters',
        'the parameters do not fit the extract',
        422,
        resolved.problems,
      );
    const bound = bindParameters(dataset.sql, MIS_DIALECT[doc.mis], resolved.bindings, 'colon');
    const params: QueryParam[] = Object.entries(bound.named).map(([name, value]) => ({
      name,
      type: typeof value === 'number' ? (Number.isInteger(value) ? 'integer' : 'number') : 'string',
      value,
    }));
    const connector = createConnector('sqlite', { path });
    const started = performance.now();
    try {
      await connector.connect();
      const stream = await connector.stream(bound.sql, params, { timeoutMs: PREVIEW_TIMEOUT_MS });
      const rows: unknown[][] = [];
      let rowCount = 0;
      for await (const row of stream) {
        if (rows.length < input.limit) rows.push(row as unknown[]);
        if (++rowCount >= MAX_COUNTED_ROWS) break;
      }
      return {
        dataset: dataset.name,
        columns: stream.columns.map((c) => ({ name: c.name, type: c.type })),
        rows,
        rowCount,
        rowCountCapped: rowCount >= MAX_COUNTED_ROWS,
        elapsedMs: Math.round(performance.now() - started),
      };
    } catch (err) {
      if (isMisError(err)) throw new AppError(`preview.${err.code.replace(/^mis\./, '')}`, err.message, 422);
      throw err;
    } finally {
      await connector.close().catch(() => undefined);
    }
  }
}
