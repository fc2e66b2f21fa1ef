import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { InvitationsController } from './invitations.controller.js';
import { PartnersController } from './partners.controller.js';
import { SchoolsController } from './schools.controller.js';
import { TenancyRepository } from './tenancy.repository.js';
import { TenancyService } from './tenancy.service.js';

@Module({
  imports: [AuthModule],
  controllers: [PartnersController, SchoolsController, InvitationsController],
  providers: [TenancyRepository, TenancyService],
  exports: [TenancyRepository, TenancyService],
})
export class TenancyModule {}
