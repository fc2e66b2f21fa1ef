import { Module } from '@nestjs/common';
import { MaintenanceProcessor } from './maintenance.processor.js';
import { MaintenanceRepository } from './maintenance.repository.js';
import { MaintenanceService } from './maintenance.service.js';

/** Housekeeping jobs; loaded only where the worker role runs. */
@Module({ providers: [MaintenanceRepository, MaintenanceService, MaintenanceProcessor] })
export class MaintenanceModule {}
