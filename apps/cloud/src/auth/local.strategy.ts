import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-local';
import { AppError } from '../common/app-error.js';
import { Email } from '../common/zod-pipe.js';
import type { UserRecord } from './auth.repository.js';
import { AuthService } from './auth.service.js';
import { type AuthedRequest, actorOf } from './principal.js';

/** passport-local: e-mail + password from the JSON body, checked with lock-out by AuthService. */
@Injectable()
export class LocalStrategy extends PassportStrategy(Strategy, 'local') {
  constructor(private readonly auth: AuthService) {
    super({ usernameField: 'email', passwordField: 'password', passReqToCallback: true });
  }

  async validate(req: AuthedRequest, email: string, password: string): Promise<UserRecord> {
    const parsed = Email.safeParse(email);
    if (!parsed.success || typeof password !== 'string' || password.length > 256) {
      throw new AppError('auth.invalid_credentials', 'e-mail or password is wrong', 401);
    }
    return this.auth.validateCredentials(parsed.data, password, actorOf(req));
  }
}
