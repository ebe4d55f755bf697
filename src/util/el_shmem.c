/*
 * el_shmem.c
 *		Shared memory of the preloaded library.
 *
 * The wakeup slots (el_wakeup.c), the worker registry (el_worker.c) and the
 * listener count (el_listen.c) each live in a structure of their own in
 * shared memory.  They register it here while the library is preloaded;
 * one request hook asks for the space of all of them and one startup hook
 * attaches each (initialising it in the process that creates it).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "util/util.h"

#define EL_SHMEM_AREAS 8

typedef struct ElShmemArea
{
	const char *name;
	Size		size;
	Size		(*sizefn) (void);	/* or this, asked once MaxBackends is known */
	ElShmemInitFunc init;		/* called on the new structure only */
	void	  **ptr;			/* where the process keeps its address */
} ElShmemArea;

static ElShmemArea el_areas[EL_SHMEM_AREAS];
static int	el_nareas = 0;
static bool el_attached = false;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* The size of area i, fixed or asked for. */
static Size
el_area_size(int i)
{
	return el_areas[i].sizefn ? el_areas[i].sizefn() : el_areas[i].size;
}

static void
el_shmem_request(void)
{
	int			i;

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	for (i = 0; i < el_nareas; i++)
		RequestAddinShmemSpace(MAXALIGN(el_area_size(i)));
}

static void
el_shmem_startup(void)
{
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	for (i = 0; i < el_nareas; i++)
	{
		bool		found;

		*el_areas[i].ptr = ShmemInitStruct(el_areas[i].name, el_area_size(i), &found);
		if (!found)
			el_areas[i].init(*el_areas[i].ptr);
	}
	LWLockRelease(AddinShmemInitLock);
	el_attached = true;
}

/*
 * Registers a structure of size bytes named name: *ptr points to it in every
 * process once shared memory is attached, init sets up a new one.  Only
 * while shared_preload_libraries is processed.
 */
void
el_shmem_register(const char *name, Size size, ElShmemInitFunc init, void **ptr)
{
	Assert(process_shared_preload_libraries_in_progress);
	if (el_nareas == EL_SHMEM_AREAS)
		elog(ERROR, "too many eventlog shared memory structures");
	if (el_nareas == 0)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = el_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = el_shmem_startup;
	}
	el_areas[el_nareas].name = name;
	el_areas[el_nareas].size = size;
	el_areas[el_nareas].sizefn = NULL;
	el_areas[el_nareas].init = init;
	el_areas[el_nareas].ptr = ptr;
	el_nareas++;
}

/*
 * True once this library's shared memory is attached: it was loaded by
 * shared_preload_libraries, so its background workers run.
 */
bool
el_shmem_attached(void)
{
	return el_attached;
}

/*
 * el_shmem_register for a structure whose size depends on MaxBackends,
 * which is not known yet while shared_preload_libraries is processed:
 * sizefn is asked when the space is requested.
 */
void
el_shmem_register_sized(const char *name, Size (*sizefn) (void), ElShmemInitFunc init, void **ptr)
{
	el_shmem_register(name, 0, init, ptr);
	el_areas[el_nareas - 1].sizefn = sizefn;
}
