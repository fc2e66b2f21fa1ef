import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Policy } from '../auth/policy.js';
import { Text, Uuid, ZodPipe } from '../common/zod-pipe.js';
import { SchoolPermissionsService } from './school-permissions.service.js';

const BreakQuery = z.strictObject({ group: Text(100) });
const school = { kind: 'school', param: 'schoolId' } as const;

@ApiTags('permissions')
@ApiBearerAuth()
@Controller('schools/:schoolId/permissions')
export class SchoolPermissionsController {
  constructor(private readonly permissions: SchoolPermissionsService) {}

  @Get()
  @Policy({ roles: ['school_admin', 'school_viewer', 'support'], tenant: school })
  @ApiOperation({
    summary:
      'The MIS permission groups this school’s account needs for every approved extract, and which extract needs each.',
  })
  forSchool(@Param('schoolId', new ZodPipe(Uuid)) schoolId: string) {
    return this.permissions.forSchool(schoolId);
  }

  @Get('what-breaks')
  @Policy({ roles: ['school_admin', 'school_viewer', 'support'], tenant: school })
  @ApiOperation({
    summary: 'Which extracts and columns would fail if a group were removed from the account.',
  })
  whatBreaks(
    @Param('schoolId', new ZodPipe(Uuid)) schoolId: string,
    @Query(new ZodPipe(BreakQuery)) q: z.infer<typeof BreakQuery>,
  ) {
    return this.permissions.whatBreaks(schoolId, q.group);
  }
}
