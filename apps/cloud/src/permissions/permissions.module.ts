import { Module } from '@nestjs/common';
import { SchoolPermissionsController } from './school-permissions.controller.js';
import { SchoolPermissionsService } from './school-permissions.service.js';

@Module({
  controllers: [SchoolPermissionsController],
  providers: [SchoolPermissionsService],
  exports: [SchoolPermissionsService],
})
export class PermissionsModule {}
