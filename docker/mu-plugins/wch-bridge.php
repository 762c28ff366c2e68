<?php
/**
 * Plugin Name: WCH Bridge (sidecar owns the Action Scheduler group)
 * Description: Keeps PHP's Action Scheduler runners off the action group(s) run by the wch-bridge Python sidecar (default group "wch"), and says so in wp-admin.
 * Version:     0.1.0
 * License:     GPL-2.0-or-later
 * Requires PHP: 7.0
 *
 * How it works: on `action_scheduler_init` it makes sure every owned group has a row in
 * {$wpdb->prefix}actionscheduler_groups (Action Scheduler throws on every claim that filters on a
 * group without a row), then adds those groups to the data store's `exclude-groups` claim filter.
 * The one store instance serves the WP-Cron and the async request runners. Caveats: WP-CLI's
 * `wp action-scheduler run --exclude-groups=...` replaces the filter, `--group=...` bypasses it, and the
 * admin "Run" row link runs an action whatever its group.
 *
 * Configuration (wp-config.php), both optional:
 *   define( 'WCH_BRIDGE_GROUPS', 'wch' );                  // string (comma-separated) or array.
 *   define( 'WCH_BRIDGE_REPORT_URL', 'https://example.com/wch-report/report.html' );
 * Filter: `wch_bridge_groups` (array of group slugs).
 *
 * This is a must-use plugin: copy it to wp-content/mu-plugins/.
 *
 * @package WCH_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The group slugs the sidecar owns: WCH_BRIDGE_GROUPS (default "wch"), then the `wch_bridge_groups` filter.
 *
 * @return string[] Unique, non-empty slugs.
 */
function wch_bridge_groups() {
	$groups = defined( 'WCH_BRIDGE_GROUPS' ) ? WCH_BRIDGE_GROUPS : array( 'wch' );
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
 *     @type string[] $excluded Owned groups added to the claim filter.
 *     @type string[] $missing  Owned groups whose row could not be found or created.
 * }
 */
function wch_bridge_state( $set = null ) {
	static $state = array(
		'status'   => 'unknown',
		'excluded' => array(),
		'missing'  => array(),
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
 * On `action_scheduler_init`: ensure the group rows, then exclude the groups from PHP's claims.
 *
 * A group is only added to the filter once its row is confirmed: a filter naming a group without a row
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

	// Only the DB store has claim filters (not the hybrid store used while migrating from posts).
	if ( ! is_object( $store ) || ! method_exists( $store, 'set_claim_filter' ) ) {
		wch_bridge_state( array( 'status' => 'unsupported-store' ) );
		return;
	}

	$owned = wch_bridge_groups();
	if ( empty( $owned ) ) {
		wch_bridge_state( array( 'status' => 'ok' ) );
		return;
	}

	$present = wch_bridge_ensure_group_rows( $owned );
	$missing = array_values( array_diff( $owned, $present ) );

	if ( ! empty( $present ) ) {
		$existing = method_exists( $store, 'get_claim_filter' ) ? $store->get_claim_filter( 'exclude-groups' ) : '';
		if ( is_string( $existing ) ) {
			$existing = '' === $existing ? array() : explode( ',', $existing );
		}
		$merged = array_values( array_unique( array_merge( (array) $existing, $present ) ) );
		$store->set_claim_filter( 'exclude-groups', $merged );
	}

	wch_bridge_state(
		array(
			'status'   => empty( $missing ) ? 'ok' : 'error',
			'excluded' => $present,
			'missing'  => $missing,
		)
	);
}
add_action( 'action_scheduler_init', 'wch_bridge_exclude_groups' );

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
 * One human sentence about the state, plain text (escape on output).
 *
 * @return string
 */
function wch_bridge_status_text() {
	$state  = wch_bridge_state();
	$groups = implode( ', ', wch_bridge_groups() );

	switch ( $state['status'] ) {
		case 'ok':
			return sprintf(
				/* translators: %s: comma-separated Action Scheduler group slugs. */
				__( 'Scheduled actions in the group(s) %s are run by the wch-bridge sidecar, not by WordPress. PHP\'s queue runners skip them; please do not use the "Run" link on them.', 'wch-bridge' ),
				$groups
			);
		case 'error':
			return sprintf(
				/* translators: %s: comma-separated Action Scheduler group slugs. */
				__( 'wch-bridge could not find or create the Action Scheduler group row(s) %s, so PHP\'s queue runners are NOT kept off them. Check the database user\'s INSERT privilege on the actionscheduler_groups table.', 'wch-bridge' ),
				implode( ', ', $state['missing'] )
			);
		case 'unsupported-store':
			return __( 'wch-bridge: the active Action Scheduler data store has no claim filters (for example during the migration to custom tables), so PHP\'s queue runners are not kept off the sidecar\'s group yet.', 'wch-bridge' );
		default:
			return __( 'wch-bridge: Action Scheduler is not loaded (is WooCommerce active?). Nothing to keep off the sidecar\'s group.', 'wch-bridge' );
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
		'ok'    => array( 'good', __( 'The wch-bridge sidecar owns its Action Scheduler group', 'wch-bridge' ) ),
		'error' => array( 'critical', __( 'PHP is not kept off the wch-bridge group', 'wch-bridge' ) ),
	);
	$pick  = isset( $map[ $state['status'] ] )
		? $map[ $state['status'] ]
		: array( 'recommended', __( 'The wch-bridge group filter is not active', 'wch-bridge' ) );

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
 * WP-CLI: warn when `wp action-scheduler run` options would let PHP claim the sidecar's actions.
 */
function wch_bridge_cli_check_run() {
	if ( ! class_exists( 'WP_CLI' ) || ! is_callable( array( 'WP_CLI', 'get_runner' ) ) ) {
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
