/*
 * el_assign.c
 *		Sticky, balanced assignment of a topic's partitions to group members.
 *
 * As Kafka's sticky assignor: every live member gets floor(n/m) or
 * ceil(n/m) of the n partitions; a partition stays with its owner whenever
 * the balance allows, so a join or a leave moves as few partitions as
 * possible; members beyond the number of partitions stay idle.
 */
#include "postgres.h"

#include "groups/el_group.h"

/*
 * members: m live members, sorted.  owners[p]: index of the live member
 * owning partition p, or -1.  Rewrites owners with the new assignment.
 */
void
el_assign_partitions(int npartitions, int nmembers, int *owners)
{
	int		   *count;
	int		   *cap;
	int		   *order;
	int			base;
	int			extra;
	int			i;
	int			p;

	if (nmembers <= 0)
	{
		for (p = 0; p < npartitions; p++)
			owners[p] = -1;
		return;
	}

	count = palloc0(sizeof(int) * nmembers);
	cap = palloc(sizeof(int) * nmembers);
	order = palloc(sizeof(int) * nmembers);

	for (p = 0; p < npartitions; p++)
		if (owners[p] >= 0 && owners[p] < nmembers)
			count[owners[p]]++;
		else
			owners[p] = -1;

	/*
	 * The members holding most now get the larger quotas, so fewer
	 * partitions move.  Insertion sort by count descending, stable on name.
	 */
	for (i = 0; i < nmembers; i++)
	{
		int			j = i;

		while (j > 0 && count[order[j - 1]] < count[i])
		{
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	base = npartitions / nmembers;
	extra = npartitions % nmembers;
	for (i = 0; i < nmembers; i++)
		cap[order[i]] = base + (i < extra ? 1 : 0);

	/* Keep what fits the quota (lowest partitions first), release the rest. */
	memset(count, 0, sizeof(int) * nmembers);
	for (p = 0; p < npartitions; p++)
	{
		int			o = owners[p];

		if (o < 0)
			continue;
		if (count[o] < cap[o])
			count[o]++;
		else
			owners[p] = -1;
	}

	/* Hand out the free partitions to the members furthest below quota. */
	for (p = 0; p < npartitions; p++)
	{
		int			best = -1;

		if (owners[p] >= 0)
			continue;
		for (i = 0; i < nmembers; i++)
		{
			if (count[i] >= cap[i])
				continue;
			if (best < 0 || cap[i] - count[i] > cap[best] - count[best])
				best = i;
		}
		Assert(best >= 0);
		owners[p] = best;
		count[best]++;
	}

	pfree(count);
	pfree(cap);
	pfree(order);
}
