<?php
/**
 * Plugin Name: WCH Bridge (hand-off between PHP and the sidecar)
 * Description: Keeps PHP's Action Scheduler runners off exactly the hooks the wch-bridge Python sidecar runs (in the groups it serves), lets PHP run every other hook, and says in wp-admin which side runs what.
 * Version:     0.3.0
 * License:     GPL-2.0-or-later
 * Requires PHP: 7.0
 *
 * How it works (default, hook-level): each bridge worker publishes the groups and hooks it serves with its
 * heartbeat (table {$wpdb->prefix}wch_bridge_workers) and, at start, in the non-autoloaded option
 * `wch_bridge_owned`. Action Scheduler has no hook-exclusion filter, so this plugin appends
 * `AND NOT ( group_id IN (...) AND hook IN (...) )` in front of the claim's ORDER BY, through the filter
 * `action_scheduler_claim_actions_order_by` (Action Scheduler 3.4+; the claim statement is
 * `UPDATE ... WHERE ... {ORDER BY} LIMIT`, or its 3.9.3+ SKIP LOCKED sub-select with the same WHERE and ORDER BY).
 * PHP's claims skip the owned (group, hook) pairs and run every other hook, in the bridge's groups too. The owned
 * pairs stay the bridge's while it is down, unless WCH_BRIDGE_FAILOVER_AFTER is defined: with no fresh heartbeat
 * for that many seconds PHP takes them back, and gives them up when a worker is live again. The ownership is read
 * with two small direct queries at most every 10 s, only when PHP claims (never through an object cache).
 * Every served group gets a row in {$wpdb->prefix}actionscheduler_groups on `action_scheduler_init`. While Action
 * Scheduler migrates from posts to its tables (its hybrid store, which has no claim filters) the same ORDER BY
 * filter carries the exclusion, in whole-group mode too: the hybrid store's claims end in the DB store's statement.
 *
 * PHP listeners hear the bridge's outcomes: on PHP's queue runs the plugin replays each `action complete via WCH
 * Bridge` / `action failed via WCH Bridge: ...` log line once, as `action_scheduler_completed_action` and
 * `action_scheduler_failed_execution` + `action_scheduler_failed_action` (see wch_bridge_replay_outcomes()).
 *
 * Whole groups (the previous behaviour): define( 'WCH_BRIDGE_EXCLUDE', 'groups' ) adds WCH_BRIDGE_GROUPS to the
 * data store's `exclude-groups` claim filter (Action Scheduler throws on a claim naming a group without a row,
 * so a group is added only once its row exists). It is also used with Action Scheduler before 3.4 (no filter),
 * and while the bridge is an older version that does not publish its hooks. Caveats of that mode: WP-CLI's
 * `--exclude-groups=...` replaces the filter and `--group=...` bypasses it. In either mode the admin "Run" row
 * link runs an action whatever its hook.
 *
 * Configuration (wp-config.php), all optional:
 *   define( 'WCH_BRIDGE_EXCLUDE', 'hooks' );              // 'hooks' (default) or 'groups'.
 *   define( 'WCH_BRIDGE_GROUPS', 'wch,wch-critical' );    // string (comma-separated) or array; default the plugin's 8 groups,
 *                                                         // as the sidecar's own default; keep them equal.
 *   define( 'WCH_BRIDGE_FAILOVER_AFTER', 300 );           // seconds; undefined: no failover (the default).
 *   define( 'WCH_BRIDGE_LIVE_SECONDS', 60 );              // a heartbeat this fresh means a live worker.
 *   define( 'WCH_BRIDGE_REPORT_URL', 'https://example.com/wch-report/report.html' );
 *   define( 'WCH_BRIDGE_REPLAY', false );                 // do not replay the bridge's outcomes as AS's PHP hooks.
 *   define( 'WCH_BRIDGE_REPLAY_FAILED_ACTION', false );   // replay failures as failed_execution only (as AS alone).
 * Filter: `wch_bridge_groups` (array of group slugs).
 *
 * This is a must-use plugin: copy it to wp-content/mu-plugins/.
 *
 * @package WCH_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The group slugs the sidecar serves: WCH_BRIDGE_GROUPS (default: the plugin's eight groups, as the sidecar's default), then the
 * `wch_bridge_groups` filter. Whole-group mode keeps PHP off them; hook-level mode makes sure their rows exist.
 *
 * @return string[] Unique, non-empty slugs.
 */
function wch_bridge_groups() {
	$groups = defined( 'WCH_BRIDGE_GROUPS' ) ? WCH_BRIDGE_GROUPS
		: array( 'wch', 'wch-critical', 'wch-urgent', 'wch-normal', 'wch-bulk', 'wch-maintenance', 'wch-catalog', 'wch-orders' );
	if ( is_string( $groups ) ) {
		$groups = explode( ',', $groups );
	}

	/**
	 * Filters the Action Scheduler groups that the wch-bridge sidecar runs (and PHP must not claim).
	 *
	 * @param string[] $groups Group slugs.
	 */
	$groups = apply_filters( 'wch_bridge_groups', (array) $groups );

	$clean = array();
	foreach ( (array) $groups as $group ) {
		if ( ! is_scalar( $group ) ) {
			continue;
		}
		$group = trim( (string) $group );
		if ( '' !== $group && strlen( $group ) <= 255 ) {
			$clean[] = $group;
		}
	}
	return array_values( array_unique( $clean ) );
}

/**
 * What happened on this request, for the admin notice and Site Health.
 *
 * @param array|null $set New state to record; null to read.
 * @return array {
 *     @type string   $status   'unknown' (not run yet), 'no-action-scheduler', 'unsupported-store',
 *                              'ok' or 'error'.
 *     @type string   $mode     'hooks' (hook-level exclusion) or 'groups' (whole groups).
 *     @type string[] $excluded Groups added to the exclude-groups claim filter (whole-group mode).
 *     @type string[] $missing  Owned groups whose row could not be found or created.
 *     @type string   $store    'db' (claim filters) or 'migrating' (Action Scheduler's hybrid store: the ORDER BY
 *                              filter carries the exclusion, whole groups included).
 * }
 */
function wch_bridge_state( $set = null ) {
	static $state = array(
		'status'   => 'unknown',
		'mode'     => 'hooks',
		'excluded' => array(),
		'missing'  => array(),
		'store'    => 'db',
	);
	if ( is_array( $set ) ) {
		$state = array_merge( $state, $set );
	}
	return $state;
}

/**
 * Makes sure a group row exists for each slug, inserting the missing ones.
 *
 * The insert is a single INSERT ... SELECT ... WHERE NOT EXISTS, so simultaneous page loads do not add
 * duplicate rows in the common case. Database errors are kept quiet (no output on the front end) and
 * reported through the return value.
 *
 * @param string[] $slugs Group slugs.
 * @return string[] The slugs that have a row now.
 */
function wch_bridge_ensure_group_rows( array $slugs ) {
	global $wpdb;

	$table  = $wpdb->prefix . 'actionscheduler_groups';
	$have   = array();
	$quiet  = $wpdb->suppress_errors( true );

	foreach ( $slugs as $slug ) {
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- must see the live row.
		$id = $wpdb->get_var( $wpdb->prepare( "SELECT group_id FROM `{$table}` WHERE slug = %s LIMIT 1", $slug ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name from $wpdb->prefix.
		if ( null === $id && '' === $wpdb->last_error ) {
			// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery
			$wpdb->query(
				$wpdb->prepare(
					"INSERT INTO `{$table}` (slug) SELECT %s FROM DUAL WHERE NOT EXISTS ( SELECT 1 FROM `{$table}` WHERE slug = %s )", // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name from $wpdb->prefix.
					$slug,
					$slug
				)
			);
			// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching
			$id = $wpdb->get_var( $wpdb->prepare( "SELECT group_id FROM `{$table}` WHERE slug = %s LIMIT 1", $slug ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		}
		if ( null !== $id ) {
			$have[] = $slug;
		}
	}

	$wpdb->suppress_errors( $quiet );
	return $have;
}

/**
 * The exclusion mode: 'hooks' (default) or 'groups' (WCH_BRIDGE_EXCLUDE), forced to 'groups' on Action
 * Scheduler older than 3.4, which has no claim ORDER BY filter.
 *
 * @return string
 */
function wch_bridge_mode() {
	$mode = defined( 'WCH_BRIDGE_EXCLUDE' ) && 'groups' === WCH_BRIDGE_EXCLUDE ? 'groups' : 'hooks';
	return 'hooks' === $mode && ! wch_bridge_has_order_by_filter() ? 'groups' : $mode;
}

/**
 * Whether the loaded Action Scheduler has the claim filter `action_scheduler_claim_actions_order_by` (3.4+).
 *
 * @return bool
 */
function wch_bridge_has_order_by_filter() {
	if ( class_exists( 'ActionScheduler_Versions' ) && is_callable( array( 'ActionScheduler_Versions', 'instance' ) ) ) {
		$latest = ActionScheduler_Versions::instance()->latest_version();
		if ( is_string( $latest ) && version_compare( $latest, '3.4.0', '<' ) ) {
			return false;
		}
	}
	return true;
}

/**
 * On `action_scheduler_init`: ensure the group rows, then either filter PHP's claims hook by hook (default) or
 * exclude whole groups.
 *
 * A group is only added to the exclude filter once its row is confirmed: a filter naming a group without a row
 * would make every claim throw and stop the whole site's queue.
 */
function wch_bridge_exclude_groups() {
	if ( ! class_exists( 'ActionScheduler' ) || ! is_callable( array( 'ActionScheduler', 'store' ) ) ) {
		wch_bridge_state( array( 'status' => 'no-action-scheduler' ) );
		return;
	}

	try {
		$store = ActionScheduler::store();
	} catch ( \Throwable $e ) {
		wch_bridge_state( array( 'status' => 'no-action-scheduler' ) );
		return;
	}

	// The DB store has claim filters; the hybrid store used while Action Scheduler migrates from posts to its tables
	// has none, but its claims end in the DB store's claim statement, which applies the ORDER BY filter (3.4+).
	// Seen with the real Action Scheduler 3.8.2: during the migration (at least its first minute on a new site) PHP
	// ran the sidecar's hooks while a worker was live, when this plugin stood aside for a store without filters.
	$filters = is_object( $store ) && method_exists( $store, 'set_claim_filter' );
	if ( ! $filters && ! wch_bridge_has_order_by_filter() ) {
		wch_bridge_state( array( 'status' => 'unsupported-store' ) );
		return;
	}

	$mode    = wch_bridge_mode();
	$owned   = wch_bridge_groups();
	$present = empty( $owned ) ? array() : wch_bridge_ensure_group_rows( $owned );
	$missing = array_values( array_diff( $owned, $present ) );

	if ( 'groups' === $mode && $filters && ! empty( $present ) ) {
		$existing = method_exists( $store, 'get_claim_filter' ) ? $store->get_claim_filter( 'exclude-groups' ) : '';
		if ( is_string( $existing ) ) {
			$existing = '' === $existing ? array() : explode( ',', $existing );
		}
		$merged = array_values( array_unique( array_merge( (array) $existing, $present ) ) );
		$store->set_claim_filter( 'exclude-groups', $merged );
	}
	if ( ( 'hooks' === $mode || ! $filters ) && ! has_filter( 'action_scheduler_claim_actions_order_by', 'wch_bridge_claim_order_by' ) ) {
		add_filter( 'action_scheduler_claim_actions_order_by', 'wch_bridge_claim_order_by', PHP_INT_MAX, 1 );
	}

	wch_bridge_state(
		array(
			'status'   => empty( $missing ) ? 'ok' : 'error',
			'mode'     => $mode,
			'excluded' => 'groups' === $mode ? $present : array(),
			'missing'  => $missing,
			'store'    => $filters ? 'db' : 'migrating',
		)
	);
}
add_action( 'action_scheduler_init', 'wch_bridge_exclude_groups' );

/**
 * Seconds a heartbeat stays fresh (WCH_BRIDGE_LIVE_SECONDS, default 60).
 *
 * @return int
 */
function wch_bridge_live_seconds() {
	return defined( 'WCH_BRIDGE_LIVE_SECONDS' ) && (int) WCH_BRIDGE_LIVE_SECONDS > 0 ? (int) WCH_BRIDGE_LIVE_SECONDS : 60;
}

/**
 * The failover delay in seconds (WCH_BRIDGE_FAILOVER_AFTER), or 0 when failover is off (the default).
 *
 * @return int
 */
function wch_bridge_failover_after() {
	return defined( 'WCH_BRIDGE_FAILOVER_AFTER' ) && (int) WCH_BRIDGE_FAILOVER_AFTER > 0 ? (int) WCH_BRIDGE_FAILOVER_AFTER : 0;
}

/**
 * Adds the valid (group, hook) pairs of a decoded list of names to $pairs.
 *
 * @param array $pairs  group => hook => true.
 * @param mixed $groups Group slugs.
 * @param mixed $hooks  Hook names.
 * @return array
 */
function wch_bridge_add_pairs( array $pairs, $groups, $hooks ) {
	foreach ( (array) $groups as $group ) {
		foreach ( (array) $hooks as $hook ) {
			// Hook names go into the claim SQL: only plain names (no quotes, no %).
			if ( is_string( $group ) && '' !== $group && is_string( $hook ) && preg_match( '/^[A-Za-z0-9_.:\/-]{1,191}$/', $hook ) ) {
				$pairs[ $group ][ $hook ] = true;
			}
		}
	}
	return $pairs;
}

/**
 * What the bridge owns now, read from its heartbeat table and the `wch_bridge_owned` option (cached 10 s).
 *
 * @param bool $fresh Ignore the cache.
 * @return array {
 *     @type string $status 'live' (a worker beats), 'down' (no live worker; the owned hooks wait for it),
 *                          'failover' (no heartbeat for WCH_BRIDGE_FAILOVER_AFTER s: PHP runs them),
 *                          'none' (nothing published yet: whole groups stay off PHP), 'legacy' (a bridge
 *                          that does not publish hooks: whole groups too).
 *     @type array  $pairs  group => hook => true, the pairs PHP must not claim.
 *     @type int    $live   Live workers.
 *     @type int    $age    Seconds since the newest heartbeat (-1: none).
 * }
 */
function wch_bridge_ownership( $fresh = false ) {
	static $cache = null, $at = 0;
	if ( ! $fresh && null !== $cache && time() - $at < 10 ) {
		return $cache;
	}
	global $wpdb;
	$table = $wpdb->prefix . 'wch_bridge_workers';
	$quiet = $wpdb->suppress_errors( true );
	$cut   = gmdate( 'Y-m-d H:i:s', time() - wch_bridge_live_seconds() );
	// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching, WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name from $wpdb->prefix; must see the live rows.
	$rows   = $wpdb->get_results( "SELECT served_groups, served_hooks, heartbeat_at, stopped_at FROM `{$table}` ORDER BY heartbeat_at DESC LIMIT 200", ARRAY_A );
	$legacy = false;
	if ( ! is_array( $rows ) || '' !== $wpdb->last_error ) {
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching, WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$legacy = null !== $wpdb->get_var( "SELECT MAX(heartbeat_at) FROM `{$table}`" ) && '' === $wpdb->last_error;
		$rows   = array();
	}
	// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- read past any object cache: the sidecar writes it.
	$raw = $wpdb->get_var( $wpdb->prepare( "SELECT option_value FROM `{$wpdb->options}` WHERE option_name = %s LIMIT 1", 'wch_bridge_owned' ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
	$wpdb->suppress_errors( $quiet );

	$live   = array();
	$count  = 0;
	$newest = null;
	foreach ( $rows as $row ) {
		$newest = null === $newest || $row['heartbeat_at'] > $newest ? $row['heartbeat_at'] : $newest;
		if ( empty( $row['stopped_at'] ) && $row['heartbeat_at'] >= $cut ) {
			$live = wch_bridge_add_pairs( $live, json_decode( (string) $row['served_groups'], true ), json_decode( (string) $row['served_hooks'], true ) );
			++$count;
		}
	}
	$pairs = $live;
	$doc   = is_string( $raw ) ? json_decode( $raw, true ) : null;
	if ( is_array( $doc ) && isset( $doc['groups'] ) && is_array( $doc['groups'] ) ) {
		foreach ( $doc['groups'] as $group => $hooks ) {
			$pairs = wch_bridge_add_pairs( $pairs, array( (string) $group ), $hooks );
		}
	}
	$age = null === $newest ? -1 : max( 0, time() - (int) strtotime( $newest . ' UTC' ) );

	if ( $count > 0 ) {
		$status = 'live';
	} elseif ( $legacy ) {
		$status = 'legacy';
	} elseif ( empty( $pairs ) && wch_bridge_failover_after() > 0 ) {
		$status = 'failover';  // No sidecar ever published: with failover on, PHP runs everything.
	} elseif ( empty( $pairs ) ) {
		$status = 'none';  // Nothing published yet: whole groups stay off PHP until a worker says what it runs.
	} elseif ( wch_bridge_failover_after() > 0 && ( $age < 0 || $age >= wch_bridge_failover_after() ) ) {
		$status = 'failover';
		$pairs  = array();
	} else {
		$status = 'down';
	}
	$cache = array(
		'status' => $status,
		'pairs'  => $pairs,
		'live'   => $count,
		'age'    => $age,
	);
	$at    = time();
	return $cache;
}

/**
 * The SQL condition that keeps a claim off the owned pairs: `NOT ( ( group_id IN (1,2) AND hook IN ('a','b') ) OR
 * ... )`, '' when nothing is owned. Whole groups (legacy bridge): `group_id NOT IN (...)`. Group ids come from
 * every row of each slug (duplicates happen), as integers; hooks are plain names (checked), quoted.
 *
 * @param array $own The result of wch_bridge_ownership().
 * @return string
 */
function wch_bridge_claim_condition( array $own ) {
	global $wpdb;
	$whole = in_array( $own['status'], array( 'legacy', 'none' ), true );
	$slugs = $whole ? wch_bridge_groups() : array_keys( $own['pairs'] );
	if ( empty( $slugs ) ) {
		return '';
	}
	$table = $wpdb->prefix . 'actionscheduler_groups';
	$in    = implode( ', ', array_fill( 0, count( $slugs ), '%s' ) );
	// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching, WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.PreparedSQLPlaceholders
	$rows = $wpdb->get_results( $wpdb->prepare( "SELECT group_id, slug FROM `{$table}` WHERE slug IN ( {$in} )", $slugs ), ARRAY_A );
	$ids  = array();
	foreach ( (array) $rows as $row ) {
		$ids[ (string) $row['slug'] ][] = (int) $row['group_id'];
	}
	if ( $whole ) {
		$all = array();
		foreach ( $ids as $list ) {
			$all = array_merge( $all, $list );
		}
		return empty( $all ) ? '' : 'group_id NOT IN ( ' . implode( ',', array_unique( $all ) ) . ' )';
	}
	$by_hooks = array();  // One term per distinct hook list.
	foreach ( $own['pairs'] as $group => $hooks ) {
		if ( empty( $ids[ $group ] ) ) {
			continue;  // No row, no action in that group.
		}
		$names = array_keys( $hooks );
		sort( $names );
		$key = implode( ',', $names );
		$by_hooks[ $key ]['hooks'] = $names;
		foreach ( $ids[ $group ] as $id ) {
			$by_hooks[ $key ]['ids'][] = $id;
		}
	}
	$terms = array();
	foreach ( $by_hooks as $term ) {
		$ids_sql   = implode( ',', array_unique( $term['ids'] ) );
		$hooks_sql = "'" . implode( "','", array_map( 'esc_sql', $term['hooks'] ) ) . "'";
		$terms[]   = "( group_id IN ( {$ids_sql} ) AND hook IN ( {$hooks_sql} ) )";
	}
	return empty( $terms ) ? '' : 'NOT ( ' . implode( ' OR ', $terms ) . ' )';
}

/**
 * Filter `action_scheduler_claim_actions_order_by`: put the ownership condition in front of the ORDER BY, so it
 * joins the claim's WHERE (plain and SKIP LOCKED claims alike). When ownership cannot be read, the whole groups
 * are kept off PHP (the safe side); only when even that fails is the claim left as it was.
 *
 * @param string $order_by The ORDER BY clause.
 * @return string
 */
function wch_bridge_claim_order_by( $order_by ) {
	if ( ! is_string( $order_by ) ) {
		return $order_by;
	}
	try {
		// Whole-group mode reaches this filter only while the store has no claim filters (migrating): whole groups.
		$state     = wch_bridge_state();
		$own       = 'groups' === $state['mode'] ? array( 'status' => 'none', 'pairs' => array() ) : wch_bridge_ownership();
		$condition = wch_bridge_claim_condition( $own );
		wch_bridge_report_php_side( $own );
	} catch ( \Throwable $e ) {
		try {  // Cannot tell who owns what: keep PHP off the whole groups rather than run the sidecar's hooks.
			$condition = wch_bridge_claim_condition( array( 'status' => 'none', 'pairs' => array() ) );
		} catch ( \Throwable $e2 ) {
			return $order_by;
		}
	}
	return '' === $condition ? $order_by : 'AND ' . $condition . ' ' . $order_by;
}

/**
 * Tells the sidecar what PHP runs (option `wch_bridge_php_side`, not autoloaded; from claims only, written when it
 * changed or is 5 min old, so not on every request): the mode, whole groups kept off PHP, the `wch*` hooks PHP has
 * callbacks for, failover state, whether a persistent object cache is in use.
 *
 * @param array $own The result of wch_bridge_ownership().
 */
function wch_bridge_report_php_side( array $own ) {
	static $last = 0;
	if ( time() - $last < 300 ) {
		return;
	}
	$last  = time();
	$hooks = array();
	foreach ( array_keys( isset( $GLOBALS['wp_filter'] ) ? (array) $GLOBALS['wp_filter'] : array() ) as $hook ) {
		if ( is_string( $hook ) && 0 === strpos( $hook, 'wch' ) && has_action( $hook ) && count( $hooks ) < 500 ) {
			$hooks[] = $hook;
		}
	}
	sort( $hooks );
	$state = wch_bridge_state();
	$doc   = array(
		'v'               => 1,
		'mode'            => 'legacy' === $own['status'] ? 'groups' : $state['mode'],
		'excluded_groups' => 'legacy' === $own['status'] ? wch_bridge_groups() : $state['excluded'],
		'php_hooks'       => $hooks,
		'failover'        => 'failover' === $own['status'],
		'object_cache'    => function_exists( 'wp_using_ext_object_cache' ) && (bool) wp_using_ext_object_cache(),
		'serves_transients' => true,  // 0.3.0+: the sidecar's transients are served from the database (object cache).
		'version'         => '0.3.0',
	);
	$prev = json_decode( (string) get_option( 'wch_bridge_php_side', '' ), true );
	if ( is_array( $prev ) && isset( $prev['seen_gmt'] ) ) {
		$seen = (int) strtotime( $prev['seen_gmt'] . ' UTC' );
		unset( $prev['seen_gmt'] );
		if ( $prev === $doc && time() - $seen < 300 ) {
			return;  // Unchanged and fresh: each PHP request starts with $last = 0.
		}
	}
	$doc['seen_gmt'] = gmdate( 'Y-m-d H:i:s' );
	update_option( 'wch_bridge_php_side', wp_json_encode( $doc ), false );
}

// Seconds a bridge outcome's log line must be old before it is replayed (lower log ids may commit late).
defined( 'WCH_BRIDGE_REPLAY_LAG' ) || define( 'WCH_BRIDGE_REPLAY_LAG', 10 );

/**
 * Replays the outcomes the bridge's workers wrote (Action Scheduler log lines `action complete via WCH Bridge` and
 * `action failed via WCH Bridge: <message>`) as the PHP hooks Action Scheduler fires when PHP runs an action, so PHP
 * listeners hear bridge-run actions too, once each:
 *   complete: do_action( 'action_scheduler_completed_action', $action_id )            (as ActionScheduler_DBStore::mark_complete)
 *   failed:   do_action( 'action_scheduler_failed_execution', $action_id, $exception, 'WCH Bridge' )  (as the queue runner)
 *             do_action( 'action_scheduler_failed_action', $action_id, 0 )  Action Scheduler fires this one only for
 *             an action its cleaner times out; the plugin's dead-letter queue listens to it, so a bridge failure fires
 *             it too (timeout 0), unless WCH_BRIDGE_REPLAY_FAILED_ACTION is defined false.
 * Runs on `action_scheduler_before_process_queue` (WP-Cron, async runner, WP-CLI), at most once a request. A cursor
 * (option `wch_bridge_replay_cursor`, the last replayed log_id, read and moved with direct queries, past any object
 * cache) is moved by compare-and-swap before the hooks fire, so two requests never replay the same line; a request
 * that dies meanwhile loses its lines (at most once). The cursor starts at the newest log line (nothing older is
 * replayed) and stops before lines younger than WCH_BRIDGE_REPLAY_LAG s. Action Scheduler's own listeners (its
 * logger, which would write the log line again, WP-CLI's runner, which would print an error) are detached
 * meanwhile. Not replayed: before/begin/after_execute (listeners expect to be inside the run), operator commands
 * (`WCH Bridge CLI`). WCH_BRIDGE_REPLAY defined false turns it off.
 *
 * @return int Outcomes replayed.
 */
function wch_bridge_replay_outcomes() {
	static $done = false;
	if ( $done || ( defined( 'WCH_BRIDGE_REPLAY' ) && ! WCH_BRIDGE_REPLAY ) ) {
		return 0;
	}
	$done = true;
	global $wpdb;
	$logs  = $wpdb->prefix . 'actionscheduler_logs';
	$quiet = $wpdb->suppress_errors( true );
	$rows  = wch_bridge_replay_claim( $logs );
	$wpdb->suppress_errors( $quiet );

	$failed_action = ! defined( 'WCH_BRIDGE_REPLAY_FAILED_ACTION' ) || WCH_BRIDGE_REPLAY_FAILED_ACTION;
	$hooks         = array( 'action_scheduler_completed_action', 'action_scheduler_failed_execution', 'action_scheduler_failed_action' );
	$detached      = array();
	foreach ( $hooks as $hook ) {
		$detached[ $hook ] = empty( $rows ) ? array() : wch_bridge_detach_as_listeners( $hook );
	}
	$count = 0;
	foreach ( $rows as $row ) {
		$id = (int) $row['action_id'];
		try {
			if ( 'action complete via WCH Bridge' === $row['message'] ) {
				do_action( 'action_scheduler_completed_action', $id );
			} else {
				$error = new Exception( (string) substr( $row['message'], strlen( 'action failed via WCH Bridge: ' ) ) );
				do_action( 'action_scheduler_failed_execution', $id, $error, 'WCH Bridge' );
				if ( $failed_action ) {
					do_action( 'action_scheduler_failed_action', $id, 0 );
				}
			}
			++$count;
		} catch ( \Throwable $e ) {
			continue;  // A listener's error must not stop the other replays nor PHP's queue run.
		}
	}
	foreach ( $detached as $hook => $list ) {
		foreach ( $list as $cb ) {
			add_action( $hook, $cb[0], $cb[1], $cb[2] );
		}
	}
	return $count;
}
add_action( 'action_scheduler_before_process_queue', 'wch_bridge_replay_outcomes', 5, 0 );

/**
 * Takes the next bridge outcomes to replay: moves the cursor by compare-and-swap and returns the log rows it
 * passed over ([] when there are none, or another request moved the cursor first).
 *
 * @param string $logs The Action Scheduler logs table.
 * @return array[] Rows with log_id, action_id, message.
 */
function wch_bridge_replay_claim( $logs ) {
	global $wpdb;
	$name = 'wch_bridge_replay_cursor';
	// phpcs:disable WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching, WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table names from $wpdb->prefix; the cursor must be read and moved in the database.
	$cursor = $wpdb->get_var( $wpdb->prepare( "SELECT option_value FROM `{$wpdb->options}` WHERE option_name = %s LIMIT 1", $name ) );
	if ( null === $cursor ) {
		if ( '' === $wpdb->last_error ) {  // First run: start at the newest line.
			$max = (int) $wpdb->get_var( "SELECT COALESCE( MAX( log_id ), 0 ) FROM `{$logs}`" );
			if ( '' === $wpdb->last_error ) {
				$wpdb->query( $wpdb->prepare( "INSERT IGNORE INTO `{$wpdb->options}` ( option_name, option_value, autoload ) VALUES ( %s, %s, 'no' )", $name, (string) $max ) );
			}
		}
		return array();
	}
	$from  = (int) $cursor;
	$young = $wpdb->get_var( $wpdb->prepare( "SELECT MIN( log_id ) FROM `{$logs}` WHERE log_id > %d AND log_date_gmt > %s", $from, gmdate( 'Y-m-d H:i:s', time() - WCH_BRIDGE_REPLAY_LAG ) ) );
	$upto  = null === $young ? (int) $wpdb->get_var( "SELECT COALESCE( MAX( log_id ), 0 ) FROM `{$logs}`" ) : (int) $young - 1;
	if ( '' !== $wpdb->last_error || $upto <= $from ) {
		return array();
	}
	$rows = $wpdb->get_results(
		$wpdb->prepare(
			"SELECT log_id, action_id, message FROM `{$logs}` WHERE log_id > %d AND log_id <= %d AND ( message = %s OR message LIKE %s ) ORDER BY log_id LIMIT 500",
			$from,
			$upto,
			'action complete via WCH Bridge',
			$wpdb->esc_like( 'action failed via WCH Bridge: ' ) . '%'
		),
		ARRAY_A
	);
	if ( ! is_array( $rows ) || '' !== $wpdb->last_error ) {
		return array();
	}
	if ( 500 === count( $rows ) ) {
		$upto = (int) $rows[499]['log_id'];
	}
	$moved = $wpdb->query( $wpdb->prepare( "UPDATE `{$wpdb->options}` SET option_value = %s WHERE option_name = %s AND option_value = %s", (string) $upto, $name, (string) $cursor ) );
	// phpcs:enable
	return 1 === $moved ? $rows : array();
}

/**
 * Removes Action Scheduler's own callbacks (objects of its `ActionScheduler_*` classes: its logger, WP-CLI's
 * runner) from a hook, for the length of a replay.
 *
 * @param string $hook Hook name.
 * @return array[] The removed callbacks: [ callback, priority, accepted args ], to add back.
 */
function wch_bridge_detach_as_listeners( $hook ) {
	global $wp_filter;
	if ( empty( $wp_filter[ $hook ] ) ) {
		return array();
	}
	$by_priority = is_object( $wp_filter[ $hook ] ) && isset( $wp_filter[ $hook ]->callbacks ) ? $wp_filter[ $hook ]->callbacks : (array) $wp_filter[ $hook ];
	$removed     = array();
	foreach ( $by_priority as $priority => $callbacks ) {
		foreach ( (array) $callbacks as $cb ) {
			$fn = is_array( $cb ) && isset( $cb['function'] ) ? $cb['function'] : $cb;
			if ( is_array( $fn ) && isset( $fn[0] ) && is_object( $fn[0] ) && 0 === strpos( get_class( $fn[0] ), 'ActionScheduler_' ) ) {
				$removed[] = array( $fn, $priority, is_array( $cb ) && isset( $cb['accepted_args'] ) ? (int) $cb['accepted_args'] : 1 );
			}
		}
	}
	foreach ( $removed as $cb ) {
		remove_action( $hook, $cb[0], $cb[1] );
	}
	return $removed;
}

/**
 * The transients the sidecar writes (into {prefix}options, as WordPress does without a persistent object cache):
 * job, broadcast and cart-cleanup results, read by the plugin with get_transient().
 *
 * @param string $name Transient name.
 * @return bool
 */
function wch_bridge_is_sidecar_transient( $name ) {
	return 'wch_cart_cleanup_last_result' === $name || 1 === preg_match( '/^wch_(job_result|broadcast_summary|broadcast_result)_[A-Za-z0-9_.:-]{1,150}$/', (string) $name );
}

/**
 * With a persistent object cache (an object-cache.php drop-in: Redis, Memcached, ...) get_transient() reads the
 * cache only, never {prefix}options, so the plugin would never see the sidecar's results. This `all` callback (added
 * only then) puts a `pre_transient_<name>` filter on each sidecar transient just before WordPress reads it: the
 * hooks of a name only exist once its id is known, and `all` runs before WordPress looks for them.
 *
 * @param string $hook The hook being fired.
 */
function wch_bridge_route_transient( $hook ) {
	if ( ! is_string( $hook ) || 0 !== strncmp( $hook, 'pre_transient_wch_', 18 ) ) {
		return;
	}
	if ( wch_bridge_is_sidecar_transient( substr( $hook, 14 ) ) && ! has_filter( $hook, 'wch_bridge_db_transient' ) ) {
		add_filter( $hook, 'wch_bridge_db_transient', 10, 2 );
	}
}

/**
 * `pre_transient_<name>` for a sidecar transient: its value from {prefix}options when the sidecar wrote one that has
 * not expired, else $pre (WordPress then reads its cache as usual).
 *
 * @param mixed  $pre  The value so far (false).
 * @param string $name Transient name.
 * @return mixed
 */
function wch_bridge_db_transient( $pre, $name = '' ) {
	global $wpdb;
	if ( false !== $pre || ! wch_bridge_is_sidecar_transient( $name ) ) {
		return $pre;
	}
	$quiet = $wpdb->suppress_errors( true );
	// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching, WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the sidecar writes these rows; the cache never has them.
	$rows = $wpdb->get_results( $wpdb->prepare( "SELECT option_name, option_value FROM `{$wpdb->options}` WHERE option_name IN ( %s, %s )", '_transient_' . $name, '_transient_timeout_' . $name ), ARRAY_A );
	$wpdb->suppress_errors( $quiet );
	$found = array();
	foreach ( (array) $rows as $row ) {
		$found[ $row['option_name'] ] = $row['option_value'];
	}
	if ( ! isset( $found[ '_transient_' . $name ] ) ) {
		return $pre;
	}
	$timeout = isset( $found[ '_transient_timeout_' . $name ] ) ? (int) $found[ '_transient_timeout_' . $name ] : 0;
	if ( $timeout > 0 && $timeout < time() ) {
		return $pre;
	}
	$value = maybe_unserialize( $found[ '_transient_' . $name ] );
	return false === $value ? $pre : $value;
}

/**
 * Serve the sidecar's transients from the database when a persistent object cache is in use (WordPress starts the
 * object cache before it loads must-use plugins, so this runs when the plugin is loaded). An `all` callback costs
 * about 0.3 us per hook WordPress fires (measured: PHP 8.2, WordPress 6.1), so it is added where the plugin reads
 * these results (wp-admin and admin-ajax, WP-Cron, WP-CLI, REST), not on front-end page views, unless
 * WCH_BRIDGE_TRANSIENTS_EVERYWHERE is defined true.
 *
 * @param mixed $now True: add it now (REST requests, from `rest_api_init`).
 */
function wch_bridge_watch_transients( $now = false ) {
	if ( ! function_exists( 'wp_using_ext_object_cache' ) || ! wp_using_ext_object_cache() || has_action( 'all', 'wch_bridge_route_transient' ) ) {
		return;
	}
	$back = ( function_exists( 'is_admin' ) && is_admin() ) || ( defined( 'DOING_CRON' ) && DOING_CRON ) || ( defined( 'WP_CLI' ) && WP_CLI );
	if ( true === $now || $back || ( defined( 'WCH_BRIDGE_TRANSIENTS_EVERYWHERE' ) && WCH_BRIDGE_TRANSIENTS_EVERYWHERE ) ) {
		add_action( 'all', 'wch_bridge_route_transient', 10, 1 );
		return;
	}
	add_action( 'rest_api_init', 'wch_bridge_watch_transients_rest', 0, 0 );
}
wch_bridge_watch_transients();

/**
 * On `rest_api_init`: a REST request may read the sidecar's results.
 */
function wch_bridge_watch_transients_rest() {
	wch_bridge_watch_transients( true );
}

/**
 * The report URL (constant WCH_BRIDGE_REPORT_URL), or '' when not set.
 *
 * @return string
 */
function wch_bridge_report_url() {
	if ( defined( 'WCH_BRIDGE_REPORT_URL' ) && is_string( WCH_BRIDGE_REPORT_URL ) ) {
		return WCH_BRIDGE_REPORT_URL;
	}
	return '';
}

/**
 * The owned pairs in words: "hook_a, hook_b in wch, wch-bulk".
 *
 * @param array $pairs group => hook => true.
 * @return string
 */
function wch_bridge_pairs_text( array $pairs ) {
	$hooks = array();
	foreach ( $pairs as $group_hooks ) {
		$hooks = array_merge( $hooks, array_keys( $group_hooks ) );
	}
	$hooks = array_unique( $hooks );
	sort( $hooks );
	return implode( ', ', $hooks ) . ' (' . implode( ', ', array_keys( $pairs ) ) . ')';
}

/**
 * One human sentence about which side runs what, plain text (escape on output).
 *
 * @return string
 */
function wch_bridge_status_text() {
	$state  = wch_bridge_state();
	$groups = implode( ', ', wch_bridge_groups() );

	switch ( $state['status'] ) {
		case 'ok':
			if ( 'groups' === $state['mode'] ) {
				return sprintf(
					/* translators: %s: comma-separated Action Scheduler group slugs. */
					__( 'Scheduled actions in the group(s) %s are run by the wch-bridge sidecar, not by WordPress. PHP\'s queue runners skip them; please do not use the "Run" link on them.', 'wch-bridge' ),
					$groups
				);
			}
			return wch_bridge_hand_off_text( wch_bridge_ownership() );
		case 'error':
			return sprintf(
				/* translators: %s: comma-separated Action Scheduler group slugs. */
				__( 'wch-bridge could not find or create the Action Scheduler group row(s) %s, so PHP\'s queue runners are NOT kept off them. Check the database user\'s INSERT privilege on the actionscheduler_groups table.', 'wch-bridge' ),
				implode( ', ', $state['missing'] )
			);
		case 'unsupported-store':
			return __( 'wch-bridge: the active Action Scheduler data store has no claim filters (for example during the migration to custom tables), so PHP\'s queue runners are not kept off the sidecar\'s hooks yet.', 'wch-bridge' );
		default:
			return __( 'wch-bridge: Action Scheduler is not loaded (is WooCommerce active?). Nothing to keep off the sidecar\'s hooks.', 'wch-bridge' );
	}
}

/**
 * Which side runs what, in hook-level mode.
 *
 * @param array $own The result of wch_bridge_ownership().
 * @return string
 */
function wch_bridge_hand_off_text( array $own ) {
	switch ( $own['status'] ) {
		case 'live':
			/* translators: 1: number of workers, 2: hooks and groups. */
			return sprintf( __( 'The wch-bridge sidecar is live (%1$d worker(s)) and runs %2$s. PHP\'s queue runners run every other hook; please do not use the "Run" link on the sidecar\'s hooks.', 'wch-bridge' ), $own['live'], wch_bridge_pairs_text( $own['pairs'] ) );
		case 'down':
			/* translators: 1: seconds, 2: hooks and groups. */
			return sprintf( __( 'No wch-bridge worker is live (last heartbeat %1$d s ago). Its hooks %2$s wait for it; PHP runs every other hook. Define WCH_BRIDGE_FAILOVER_AFTER to let PHP take them over.', 'wch-bridge' ), $own['age'], wch_bridge_pairs_text( $own['pairs'] ) );
		case 'failover':
			/* translators: %d: seconds. */
			return sprintf( __( 'No wch-bridge heartbeat for %d s or more (WCH_BRIDGE_FAILOVER_AFTER): PHP runs every hook, the sidecar\'s too, until a worker is live again.', 'wch-bridge' ), wch_bridge_failover_after() );
		case 'legacy':
			/* translators: %s: group slugs. */
			return sprintf( __( 'The wch-bridge sidecar is an older version that does not publish its hooks: PHP is kept off the whole group(s) %s.', 'wch-bridge' ), implode( ', ', wch_bridge_groups() ) );
		default:
			/* translators: %s: group slugs. */
			return sprintf( __( 'No wch-bridge worker has published its hooks yet: PHP is kept off the whole group(s) %s until one does.', 'wch-bridge' ), implode( ', ', wch_bridge_groups() ) );
	}
}

/**
 * Whether the current admin screen is an Action Scheduler list (Tools or WooCommerce > Status).
 *
 * @return bool
 */
function wch_bridge_is_scheduled_actions_screen() {
	if ( ! function_exists( 'get_current_screen' ) ) {
		return false;
	}
	$screen = get_current_screen();
	if ( ! $screen ) {
		return false;
	}
	if ( 'tools_page_action-scheduler' === $screen->id ) {
		return true;
	}
	// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- read-only screen check.
	$tab = isset( $_GET['tab'] ) ? sanitize_key( wp_unslash( $_GET['tab'] ) ) : '';
	return 'woocommerce_page_wc-status' === $screen->id && 'action-scheduler' === $tab;
}

/**
 * Admin notice on the Scheduled Actions screens.
 */
function wch_bridge_admin_notice() {
	if ( ! current_user_can( 'manage_options' ) && ! current_user_can( 'manage_woocommerce' ) ) {
		return;
	}
	if ( ! wch_bridge_is_scheduled_actions_screen() ) {
		return;
	}

	$state = wch_bridge_state();
	$class = 'ok' === $state['status'] ? 'notice-info' : 'notice-warning';
	$url   = wch_bridge_report_url();

	echo '<div class="notice ' . esc_attr( $class ) . '"><p>' . esc_html( wch_bridge_status_text() );
	if ( '' !== $url ) {
		echo ' <a href="' . esc_url( $url ) . '" target="_blank" rel="noopener noreferrer">'
			. esc_html__( 'Open the wch-bridge report', 'wch-bridge' ) . '</a>';
	}
	echo '</p></div>';
}
add_action( 'admin_notices', 'wch_bridge_admin_notice' );

/**
 * Site Health: a direct test that says who runs the group.
 *
 * @param array $tests Site Health tests.
 * @return array
 */
function wch_bridge_site_status_tests( $tests ) {
	if ( ! is_array( $tests ) ) {
		return $tests;
	}
	$tests['direct']['wch_bridge_group_owner'] = array(
		'label' => __( 'wch-bridge sidecar', 'wch-bridge' ),
		'test'  => 'wch_bridge_site_health_test',
	);
	return $tests;
}
add_filter( 'site_status_tests', 'wch_bridge_site_status_tests' );

/**
 * The Site Health test result.
 *
 * @return array
 */
function wch_bridge_site_health_test() {
	$state = wch_bridge_state();
	$map   = array(
		'ok'    => array( 'good', __( 'PHP and the wch-bridge sidecar share the queue without overlap', 'wch-bridge' ) ),
		'error' => array( 'critical', __( 'PHP is not kept off the wch-bridge group', 'wch-bridge' ) ),
	);
	$pick  = isset( $map[ $state['status'] ] )
		? $map[ $state['status'] ]
		: array( 'recommended', __( 'The wch-bridge claim filter is not active', 'wch-bridge' ) );
	if ( 'ok' === $state['status'] && 'hooks' === $state['mode'] ) {
		$own = wch_bridge_ownership();
		if ( 'down' === $own['status'] ) {
			$pick = array( 'recommended', __( 'No wch-bridge worker is live: its hooks wait', 'wch-bridge' ) );
		} elseif ( 'failover' === $own['status'] ) {
			$pick = array( 'recommended', __( 'PHP runs the wch-bridge hooks (failover)', 'wch-bridge' ) );
		}
	}

	$description = '<p>' . esc_html( wch_bridge_status_text() ) . '</p>';
	$url         = wch_bridge_report_url();
	$actions     = '';
	if ( '' !== $url ) {
		$actions = sprintf(
			'<p><a href="%s" target="_blank" rel="noopener noreferrer">%s</a></p>',
			esc_url( $url ),
			esc_html__( 'Open the wch-bridge report', 'wch-bridge' )
		);
	}

	return array(
		'label'       => esc_html( $pick[1] ),
		'status'      => $pick[0],
		'badge'       => array(
			'label' => esc_html__( 'Performance', 'wch-bridge' ),
			'color' => 'blue',
		),
		'description' => $description,
		'actions'     => $actions,
		'test'        => 'wch_bridge_group_owner',
	);
}

/**
 * WP-CLI: warn when `wp action-scheduler run` options would let PHP claim the sidecar's actions. Only the
 * `exclude-groups` claim filter (whole-group mode on the DB store) can be bypassed (`--group`) or replaced
 * (`--exclude-groups`); the ORDER BY filter of hook-level mode applies to every claim, whatever the options (seen
 * with the real Action Scheduler 3.8.2: a claim for group `wch` kept the owned hooks out), so nothing to warn then.
 */
function wch_bridge_cli_check_run() {
	if ( ! class_exists( 'WP_CLI' ) || ! is_callable( array( 'WP_CLI', 'get_runner' ) ) ) {
		return;
	}
	$state = wch_bridge_state();
	$mode  = 'unknown' === $state['status'] ? wch_bridge_mode() : $state['mode'];
	if ( 'groups' !== $mode || 'db' !== $state['store'] ) {
		return;
	}
	$assoc = WP_CLI::get_runner()->assoc_args;
	if ( ! is_array( $assoc ) ) {
		return;
	}
	$owned = wch_bridge_groups();

	if ( ! empty( $assoc['group'] ) ) {
		$named = array_map( 'trim', explode( ',', (string) $assoc['group'] ) );
		if ( array_intersect( $named, $owned ) ) {
			WP_CLI::warning( sprintf( 'The group(s) %s are run by the wch-bridge sidecar; --group makes PHP run them too.', implode( ', ', $owned ) ) );
		}
		return;
	}
	if ( isset( $assoc['exclude-groups'] ) ) {
		$named = array_map( 'trim', explode( ',', (string) $assoc['exclude-groups'] ) );
		$lost  = array_diff( $owned, $named );
		if ( ! empty( $lost ) ) {
			WP_CLI::warning( sprintf( '--exclude-groups replaces the wch-bridge claim filter: add %s to it, or PHP will claim the sidecar\'s actions.', implode( ',', $lost ) ) );
		}
	}
}
if ( defined( 'WP_CLI' ) && WP_CLI && class_exists( 'WP_CLI' ) ) {
	WP_CLI::add_hook( 'before_invoke:action-scheduler run', 'wch_bridge_cli_check_run' );
}
