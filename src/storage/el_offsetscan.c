/*
 * el_offsetscan.c
 *		Offset range scans for ad-hoc SQL over topics.
 *
 * Pages of an eventlog relation are in offset order and know their first
 * offset, so "WHERE partition = p AND "offset" BETWEEN a AND b" needs no
 * index: a binary search finds the page of a, and the scan stops after b.
 * The planner is offered this path for every eventlog relation with offset
 * bounds among its restrictions; producers pay nothing for it, unlike an
 * index they would have to maintain on every append.
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "access/stratnum.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "nodes/extensible.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "storage/storage_internal.h"

/* Whether the planner may use offset range scans. */
bool		eventlog_enable_offsetscan = true;

#define EL_OFFSET_SCAN_NAME "EventlogOffsetScan"

typedef struct ElOffsetScanState
{
	CustomScanState css;
	List	   *bound_exprs;	/* ExprStates of the bounds */
	List	   *strategies;		/* btree strategy of each, var on the left */
	bool		started;
	bool		done;
	int64		lo;
	int64		hi;
	int32		partition;
	ElMetaInfo	meta;
	BlockNumber blkno;
	int			index;
	ElPageView *view;
} ElOffsetScanState;

static set_rel_pathlist_hook_type prev_set_rel_pathlist_hook = NULL;

static Plan *el_plan_offset_path(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
								 List *tlist, List *clauses, List *custom_plans);
static Node *el_create_offset_state(CustomScan *cscan);
static void el_begin_offset_scan(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *el_exec_offset_scan(CustomScanState *node);
static void el_end_offset_scan(CustomScanState *node);
static void el_rescan_offset_scan(CustomScanState *node);

static const CustomPathMethods el_offset_path_methods = {
	.CustomName = EL_OFFSET_SCAN_NAME,
	.PlanCustomPath = el_plan_offset_path,
};

static const CustomScanMethods el_offset_scan_methods = {
	.CustomName = EL_OFFSET_SCAN_NAME,
	.CreateCustomScanState = el_create_offset_state,
};

static const CustomExecMethods el_offset_exec_methods = {
	.CustomName = EL_OFFSET_SCAN_NAME,
	.BeginCustomScan = el_begin_offset_scan,
	.ExecCustomScan = el_exec_offset_scan,
	.EndCustomScan = el_end_offset_scan,
	.ReScanCustomScan = el_rescan_offset_scan,
};

/* ---- Planning ---- */

/*
 * If clause bounds "offset" (offset op expr, or expr op offset) with an
 * integer comparison and an expression fixed during the scan, returns the
 * btree strategy as seen with offset on the left, and the expression.
 */
static int
el_offset_bound(RestrictInfo *rinfo, Index relid, Expr **bound)
{
	OpExpr	   *op;
	Node	   *left;
	Node	   *right;
	int			strategy;
	bool		var_left;

	if (!IsA(rinfo->clause, OpExpr))
		return 0;
	op = (OpExpr *) rinfo->clause;
	if (list_length(op->args) != 2)
		return 0;
	strategy = get_op_opfamily_strategy(op->opno, INTEGER_BTREE_FAM_OID);
	if (strategy == 0)
		return 0;

	left = strip_implicit_coercions(linitial(op->args));
	right = strip_implicit_coercions(lsecond(op->args));
	if (IsA(left, Var) && ((Var *) left)->varno == relid &&
		((Var *) left)->varattno == EL_ATT_OFFSET && ((Var *) left)->varlevelsup == 0)
		var_left = true;
	else if (IsA(right, Var) && ((Var *) right)->varno == relid &&
			 ((Var *) right)->varattno == EL_ATT_OFFSET && ((Var *) right)->varlevelsup == 0)
	{
		var_left = false;
		right = left;
	}
	else
		return 0;

	right = (Node *) (var_left ? lsecond(op->args) : linitial(op->args));
	if (contain_var_clause(right) || contain_volatile_functions(right))
		return 0;
	switch (exprType(right))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			break;
		default:
			return 0;
	}

	*bound = (Expr *) right;
	if (!var_left)
	{
		/* a op offset is offset commuted-op a */
		switch (strategy)
		{
			case BTLessStrategyNumber:
				strategy = BTGreaterStrategyNumber;
				break;
			case BTLessEqualStrategyNumber:
				strategy = BTGreaterEqualStrategyNumber;
				break;
			case BTGreaterEqualStrategyNumber:
				strategy = BTLessEqualStrategyNumber;
				break;
			case BTGreaterStrategyNumber:
				strategy = BTLessStrategyNumber;
				break;
		}
	}
	return strategy;
}

static void
el_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	List	   *bounds = NIL;
	List	   *strategies = NIL;
	List	   *bound_clauses = NIL;
	ListCell   *lc;
	Relation	relation;
	bool		ours;
	CustomPath *cpath;
	Selectivity sel;
	double		pages;

	if (prev_set_rel_pathlist_hook)
		prev_set_rel_pathlist_hook(root, rel, rti, rte);

	if (!eventlog_enable_offsetscan)
		return;
	if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_RELATION ||
		rel->reloptkind == RELOPT_JOINREL || rel->baserestrictinfo == NIL)
		return;

	relation = relation_open(rte->relid, NoLock);
	ours = el_is_eventlog_relation(relation);
	relation_close(relation, NoLock);
	if (!ours)
		return;

	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		Expr	   *bound;
		int			strategy = el_offset_bound(rinfo, rel->relid, &bound);

		if (strategy == 0)
			continue;
		bounds = lappend(bounds, bound);
		strategies = lappend_int(strategies, strategy);
		bound_clauses = lappend(bound_clauses, rinfo);
	}
	if (bounds == NIL)
		return;

	/* Binary search, then the pages of the selected range. */
	sel = clauselist_selectivity(root, bound_clauses, rel->relid, JOIN_INNER, NULL);
	pages = Max(rel->pages, 1);
	cpath = makeNode(CustomPath);
	cpath->path.pathtype = T_CustomScan;
	cpath->path.parent = rel;
	cpath->path.pathtarget = rel->reltarget;
	cpath->path.param_info = NULL;
	cpath->path.rows = rel->rows;
	cpath->path.startup_cost = ceil(log2(pages + 1)) * random_page_cost;
	cpath->path.total_cost = cpath->path.startup_cost +
		ceil(pages * sel) * seq_page_cost +
		rel->tuples * sel * (cpu_tuple_cost + cpu_operator_cost * list_length(rel->baserestrictinfo));
	cpath->flags = 0;
	cpath->custom_private = list_make2(bounds, strategies);
	cpath->methods = &el_offset_path_methods;
	add_path(rel, &cpath->path);
}

static Plan *
el_plan_offset_path(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
					List *tlist, List *clauses, List *custom_plans)
{
	CustomScan *cscan = makeNode(CustomScan);

	cscan->scan.plan.targetlist = tlist;
	/* Every restriction is rechecked; the bounds only choose the pages. */
	cscan->scan.plan.qual = extract_actual_clauses(clauses, false);
	cscan->scan.scanrelid = rel->relid;
	cscan->flags = best_path->flags;
	cscan->custom_exprs = linitial(best_path->custom_private);
	cscan->custom_private = list_make1(lsecond(best_path->custom_private));
	cscan->methods = &el_offset_scan_methods;
	return &cscan->scan.plan;
}

/* ---- Execution ---- */

static Node *
el_create_offset_state(CustomScan *cscan)
{
	ElOffsetScanState *state = palloc0(sizeof(ElOffsetScanState));

	NodeSetTag(state, T_CustomScanState);
	state->css.methods = &el_offset_exec_methods;
	state->strategies = linitial(cscan->custom_private);
	return (Node *) state;
}

static void
el_begin_offset_scan(CustomScanState *node, EState *estate, int eflags)
{
	ElOffsetScanState *state = (ElOffsetScanState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;

	state->bound_exprs = ExecInitExprList(cscan->custom_exprs, &node->ss.ps);
	state->view = palloc(sizeof(ElPageView));
	state->view->nrecords = 0;
}

/* Evaluates the bounds into [lo, hi]; false if no offset can qualify. */
static bool
el_offset_range(ElOffsetScanState *state)
{
	ExprContext *econtext = state->css.ss.ps.ps_ExprContext;
	ListCell   *le;
	ListCell   *ls;

	state->lo = 0;
	state->hi = PG_INT64_MAX;
	forboth(le, state->bound_exprs, ls, state->strategies)
	{
		ExprState  *expr = lfirst(le);
		bool		isnull;
		Datum		d = ExecEvalExprSwitchContext(expr, econtext, &isnull);
		int64		v;

		if (isnull)
			return false;
		switch (exprType((Node *) expr->expr))
		{
			case INT2OID:
				v = DatumGetInt16(d);
				break;
			case INT4OID:
				v = DatumGetInt32(d);
				break;
			default:
				v = DatumGetInt64(d);
				break;
		}
		switch (lfirst_int(ls))
		{
			case BTLessStrategyNumber:
				if (v <= 0)
					return false;
				state->hi = Min(state->hi, v - 1);
				break;
			case BTLessEqualStrategyNumber:
				state->hi = Min(state->hi, v);
				break;
			case BTEqualStrategyNumber:
				state->lo = Max(state->lo, v);
				state->hi = Min(state->hi, v);
				break;
			case BTGreaterEqualStrategyNumber:
				state->lo = Max(state->lo, v);
				break;
			case BTGreaterStrategyNumber:
				if (v == PG_INT64_MAX)
					return false;
				state->lo = Max(state->lo, v + 1);
				break;
		}
	}
	return state->lo <= state->hi;
}

/* Next visible record with an offset in [lo, hi], in offset order. */
static TupleTableSlot *
el_offset_scan_next(ScanState *ss)
{
	ElOffsetScanState *state = (ElOffsetScanState *) ss;
	Relation	rel = ss->ss_currentRelation;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;
	ElPageView *view = state->view;
	Snapshot	snapshot = ss->ps.state->es_snapshot;

	if (!state->started)
	{
		state->started = true;
		state->done = !el_offset_range(state);
		if (!state->done)
		{
			el_read_meta(rel, &state->meta);
			state->partition = state->meta.partition;
			state->blkno = el_seek_block(rel, &state->meta, state->lo);
			if (state->blkno == InvalidBlockNumber ||
				!el_view_load(rel, state->blkno, snapshot, view, NULL))
				state->done = true;
			else
				state->index = (int) Max(0, Min(state->lo - view->first_offset,
												(int64) view->nrecords));
		}
	}

	while (!state->done)
	{
		while (state->index < view->nrecords)
		{
			int			i = state->index++;
			ElRecord	rec;

			if (view->first_offset + i > state->hi)
			{
				state->done = true;
				break;
			}
			if (view->verdict[i] != EL_VISIBLE)
				continue;
			el_view_record(view, i, &rec);
			el_store_record(slot, rel, state->partition, &rec);
			return slot;
		}
		if (state->done || !view->sealed || ++state->blkno > state->meta.last_block)
			break;
		if (!el_view_load(rel, state->blkno, snapshot, view, NULL))
			break;
		state->index = 0;
	}
	state->done = true;
	return ExecClearTuple(slot);
}

static bool
el_offset_scan_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
el_exec_offset_scan(CustomScanState *node)
{
	return ExecScan(&node->ss, el_offset_scan_next, el_offset_scan_recheck);
}

static void
el_end_offset_scan(CustomScanState *node)
{
	ElOffsetScanState *state = (ElOffsetScanState *) node;

	pfree(state->view);
}

static void
el_rescan_offset_scan(CustomScanState *node)
{
	ElOffsetScanState *state = (ElOffsetScanState *) node;

	state->started = false;
	state->done = false;
	state->view->nrecords = 0;
}

void
ElOffsetScanInit(void)
{
	RegisterCustomScanMethods(&el_offset_scan_methods);
	prev_set_rel_pathlist_hook = set_rel_pathlist_hook;
	set_rel_pathlist_hook = el_set_rel_pathlist;
}
