import { Module } from '@nestjs/common';
import { AgreementsController } from './agreements.controller.js';
import { AgreementsCoreModule } from './agreements-core.module.js';

/** The agreements API (api role). */
@Module({ imports: [AgreementsCoreModule], controllers: [AgreementsController] })
export class AgreementsModule {}
