import type { INestApplication } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { ModulesContainer } from '@nestjs/core';
import { POLICY_KEY, type RoutePolicy } from './policy.js';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'ALL', 'OPTIONS', 'HEAD', 'SEARCH'] as const;

export interface RouteEntry {
  method: string;
  path: string;
  controller: string;
  handler: string;
  policy: RoutePolicy | undefined;
}

const join = (...parts: string[]) =>
  `/${parts
    .flatMap((p) => p.split('/'))
    .filter(Boolean)
    .join('/')}`;

/** Every HTTP route of the running app with its access policy: the source of the isolation matrix. */
export function routeTable(app: INestApplication): RouteEntry[] {
  const routes: RouteEntry[] = [];
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const type = wrapper.metatype as (new (...args: never[]) => unknown) | null;
      if (!type) continue;
      const base = [Reflect.getMetadata(PATH_METADATA, type) ?? ''].flat()[0] as string;
      const classPolicy = Reflect.getMetadata(POLICY_KEY, type) as RoutePolicy | undefined;
      for (const name of Object.getOwnPropertyNames(type.prototype)) {
        const fn = (type.prototype as Record<string, unknown>)[name];
        if (name === 'constructor' || typeof fn !== 'function') continue;
        const method = Reflect.getMetadata(METHOD_METADATA, fn) as number | undefined;
        const path = Reflect.getMetadata(PATH_METADATA, fn) as string | string[] | undefined;
        if (method === undefined || path === undefined) continue;
        for (const p of [path].flat()) {
          routes.push({
            method: METHODS[method] ?? String(method),
            path: join(base, p),
            controller: type.name,
            handler: name,
            policy: (Reflect.getMetadata(POLICY_KEY, fn) as RoutePolicy | undefined) ?? classPolicy,
          });
        }
      }
    }
  }
  return routes.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
}
