import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import type { Request, Response } from 'express';
import { PinoLogger } from 'nestjs-pino';
import { ZodError } from 'zod';
import { AppError, type ErrorBody } from './app-error.js';

const STATUS_CODES: Record<number, string> = {
  400: 'request.invalid',
  401: 'auth.unauthenticated',
  403: 'auth.forbidden',
  404: 'route.not_found',
  405: 'route.method_not_allowed',
  408: 'request.timeout',
  409: 'request.conflict',
  413: 'request.too_large',
  415: 'request.unsupported_media_type',
  429: 'request.rate_limited',
};

/**
 * The one place errors become responses. Known errors keep their code and message; anything else
 * is logged with its stack and answered with a generic 500, so internals never reach a client.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  constructor(private readonly logger: PinoLogger) {
    logger.setContext(AllExceptionsFilter.name);
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request & { id?: string }>();
    const res = ctx.getResponse<Response>();
    const correlationId = String(req?.id ?? '');
    const { status, body } = this.toBody(exception, correlationId);
    if (status >= 500) {
      this.logger.error({ err: exception, correlationId }, 'request failed');
    }
    if (res.headersSent) return;
    res.status(status).json(body);
  }

  private toBody(exception: unknown, correlationId: string): { status: number; body: ErrorBody } {
    if (exception instanceof AppError) {
      return {
        status: exception.status,
        body: { code: exception.code, message: exception.message, details: exception.details, correlationId },
      };
    }
    if (exception instanceof ZodError) {
      return {
        status: 400,
        body: {
          code: 'request.invalid',
          message: 'request validation failed',
          details: exception.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
          correlationId,
        },
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      const message =
        typeof response === 'string'
          ? response
          : typeof (response as { message?: unknown }).message === 'string'
            ? (response as { message: string }).message
            : exception.message;
      // Body-parser errors arrive as HttpExceptions whose message may quote the body: keep it generic.
      const safeMessage = status === 400 && /JSON/.test(message) ? 'request body is not valid JSON' : message;
      return {
        status,
        body: {
          code: STATUS_CODES[status] ?? `http.${status}`,
          message: status >= 500 ? 'internal error' : safeMessage,
          details: null,
          correlationId,
        },
      };
    }
    return {
      status: HttpStatus.INTERNAL_SERVER_ERROR,
      body: { code: 'internal', message: 'internal error', details: null, correlationId },
    };
  }
}
