import { Module } from '@nestjs/common';
import { AgreementsRepository } from './agreements.repository.js';
import { AgreementsService } from './agreements.service.js';

/** Agreements and the coverage rule, for every role that needs them. */
@Module({ providers: [AgreementsRepository, AgreementsService], exports: [AgreementsService] })
export class AgreementsCoreModule {}
