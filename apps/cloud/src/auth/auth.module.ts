import { deriveKey } from '@keystage/crypto';
import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import { PassportModule } from '@nestjs/passport';
import { ThrottlerModule } from '@nestjs/throttler';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrincipalRateLimitGuard } from '../throttle/principal-rate-limit.guard.js';
import { RedisThrottlerStorage, ThrottleStorageModule } from '../throttle/redis-throttler.storage.js';
import { KeystageThrottlerGuard, throttlers } from '../throttle/throttle.js';
import { ApiKeyAuthenticator } from './api-key-authenticator.js';
import { AuthController } from './auth.controller.js';
import { AuthGuard } from './auth.guard.js';
import { AuthRepository } from './auth.repository.js';
import { AuthService } from './auth.service.js';
import { LocalStrategy } from './local.strategy.js';
import { PasswordHasher } from './password-hasher.js';

/**
 * Authentication and the global guards, in this order: per-IP rate limits → authentication and
 * authorisation (default deny) → per-principal rate limit.
 */
@Module({
  imports: [
    PassportModule,
    JwtModule.registerAsync({
      inject: [CLOUD_CONFIG],
      useFactory: (config: CloudConfig) => ({
        secret: deriveKey(Buffer.from(config.secret, 'utf8'), 'jwt-access'),
      }),
    }),
    ThrottleStorageModule,
    ThrottlerModule.forRootAsync({
      imports: [ThrottleStorageModule],
      inject: [CLOUD_CONFIG, RedisThrottlerStorage],
      useFactory: (config: CloudConfig, storage: RedisThrottlerStorage) => ({
        throttlers: throttlers(config),
        storage,
      }),
    }),
  ],
  controllers: [AuthController],
  providers: [
    AuthRepository,
    AuthService,
    PasswordHasher,
    ApiKeyAuthenticator,
    LocalStrategy,
    { provide: APP_GUARD, useClass: KeystageThrottlerGuard },
    { provide: APP_GUARD, useClass: AuthGuard },
    { provide: APP_GUARD, useClass: PrincipalRateLimitGuard },
  ],
  exports: [PasswordHasher, AuthService],
})
export class AuthModule {}
