<?php
/**
 * Just enough WordPress and Action Scheduler, over a real MySQL connection (mysqli), to run the must-use plugin
 * docker/mu-plugins/wch-bridge.php against a test database: its own reads and writes run for real.
 *
 * Usage: php php_wordpress.php MU_PLUGIN HOST PORT USER DB PREFIX [KEY=VALUE constants ...]
 * Prints JSON: the ORDER BY that `action_scheduler_claim_actions_order_by` returns, the plugin's state, its
 * view of the ownership and its status sentence.
 */
define( 'ABSPATH', '/' );
define( 'ARRAY_A', 'ARRAY_A' );
$GLOBALS['wp_filter'] = array();
function add_action( $h, $cb, $p = 10, $n = 1 ) { $GLOBALS['wp_filter'][ $h ][ $p ][] = $cb; return true; }
function add_filter( $h, $cb, $p = 10, $n = 1 ) { return add_action( $h, $cb, $p, $n ); }
function has_action( $h, $cb = false ) { return has_filter( $h, $cb ); }
function has_filter( $h, $cb = false ) {
	if ( empty( $GLOBALS['wp_filter'][ $h ] ) ) { return false; }
	if ( false === $cb ) { return true; }
	foreach ( $GLOBALS['wp_filter'][ $h ] as $cbs ) { if ( in_array( $cb, $cbs, true ) ) { return true; } }
	return false;
}
function apply_filters( $h, $v, ...$args ) {
	if ( empty( $GLOBALS['wp_filter'][ $h ] ) ) { return $v; }
	ksort( $GLOBALS['wp_filter'][ $h ] );
	foreach ( $GLOBALS['wp_filter'][ $h ] as $cbs ) { foreach ( $cbs as $cb ) { $v = call_user_func_array( $cb, array_merge( array( $v ), $args ) ); } }
	return $v;
}
function maybe_unserialize( $v ) { $u = is_string( $v ) ? @unserialize( $v ) : false; return false === $u && 'b:0;' !== $v ? $v : $u; }
function get_transient( $t ) {  // As WordPress with a persistent object cache: `all`, pre_transient_<name>, then the cache (empty here).
	foreach ( isset( $GLOBALS['wp_filter']['all'] ) ? $GLOBALS['wp_filter']['all'] : array() as $cbs ) { foreach ( $cbs as $cb ) { call_user_func( $cb, "pre_transient_$t", false, $t ); } }
	$pre = apply_filters( "pre_transient_$t", false, $t );
	return false !== $pre ? $pre : false;
}
function do_action( $h, ...$args ) {
	if ( empty( $args ) ) { apply_filters( $h, null ); return; }
	if ( empty( $GLOBALS['wp_filter'][ $h ] ) ) { return; }
	ksort( $GLOBALS['wp_filter'][ $h ] );
	foreach ( $GLOBALS['wp_filter'][ $h ] as $cbs ) { foreach ( $cbs as $cb ) { call_user_func_array( $cb, $args ); } }
}
function remove_action( $h, $cb, $p = 10 ) {
	if ( empty( $GLOBALS['wp_filter'][ $h ][ $p ] ) ) { return false; }
	$before = count( $GLOBALS['wp_filter'][ $h ][ $p ] );
	$GLOBALS['wp_filter'][ $h ][ $p ] = array_values( array_filter( $GLOBALS['wp_filter'][ $h ][ $p ], function ( $c ) use ( $cb ) { return $c !== $cb; } ) );
	return count( $GLOBALS['wp_filter'][ $h ][ $p ] ) < $before;
}
function __( $s ) { return $s; }
function esc_html( $s ) { return htmlspecialchars( $s, ENT_QUOTES ); }
function esc_html__( $s ) { return esc_html( $s ); }
function esc_attr( $s ) { return esc_html( $s ); }
function esc_url( $s ) { return $s; }
function wp_json_encode( $v ) { return json_encode( $v ); }
function esc_sql( $s ) { global $wpdb; return $wpdb->db->real_escape_string( $s ); }
function get_option( $name, $default = false ) {
	global $wpdb;
	$v = $wpdb->get_var( $wpdb->prepare( "SELECT option_value FROM `{$wpdb->options}` WHERE option_name = %s", $name ) );
	return null === $v ? $default : $v;
}
$GLOBALS['option_writes'] = 0;
function update_option( $name, $value, $autoload = null ) {
	++$GLOBALS['option_writes'];
	global $wpdb;
	$v = $wpdb->db->real_escape_string( $value );
	$n = $wpdb->db->real_escape_string( $name );
	$wpdb->db->query( "INSERT INTO `{$wpdb->options}` (option_name, option_value, autoload) VALUES ('$n', '$v', 'no') ON DUPLICATE KEY UPDATE option_value = VALUES(option_value)" );
	return true;
}
class Test_Wpdb {
	public $prefix; public $options; public $last_error = ''; public $db; private $quiet = false;
	public function __construct( $db, $prefix ) { $this->db = $db; $this->prefix = $prefix; $this->options = $prefix . 'options'; }
	public function esc_like( $t ) { return addcslashes( $t, '_%\\' ); }
	public function suppress_errors( $s = true ) { $old = $this->quiet; $this->quiet = $s; return $old; }
	public function prepare( $q, ...$a ) {
		if ( 1 === count( $a ) && is_array( $a[0] ) ) { $a = $a[0]; }
		return preg_replace_callback( '/%[sd]/', function ( $m ) use ( &$a ) {
			$v = array_shift( $a );
			return '%d' === $m[0] ? (string) (int) $v : "'" . $this->db->real_escape_string( (string) $v ) . "'";
		}, $q );
	}
	private function run( $q ) {
		$this->last_error = '';
		try { $r = $this->db->query( $q ); } catch ( mysqli_sql_exception $e ) { $this->last_error = $e->getMessage(); return false; }
		if ( false === $r ) { $this->last_error = $this->db->error; }
		return $r;
	}
	public function get_results( $q, $o = ARRAY_A ) { $r = $this->run( $q ); return $r instanceof mysqli_result ? $r->fetch_all( MYSQLI_ASSOC ) : ( false === $r ? null : array() ); }
	public function get_var( $q ) { $r = $this->run( $q ); if ( ! $r instanceof mysqli_result ) { return null; } $row = $r->fetch_row(); return $row ? $row[0] : null; }
	public function query( $q ) { $r = $this->run( $q ); return false === $r ? false : $this->db->affected_rows; }
}
class Test_Store {
	public $f = array( 'group' => '', 'hooks' => '', 'exclude-groups' => '' );
	public function set_claim_filter( $n, $v ) { if ( isset( $this->f[ $n ] ) ) { $this->f[ $n ] = $v; } }
	public function get_claim_filter( $n ) { return isset( $this->f[ $n ] ) ? $this->f[ $n ] : ''; }
}
class Test_Hybrid_Store {  // Action Scheduler's hybrid store while migrating from posts: no claim filters.
	public $f = array( 'exclude-groups' => '' );
}
class ActionScheduler_TestLogger {  // Stands for Action Scheduler's logger: must not hear the replays.
	public $heard = 0;
	public function log_failed_action() { ++$this->heard; }
}
class WP_CLI {  // `wp action-scheduler run` with the CLI=... options (query-string form).
	public static $on = false; public static $assoc_args = array(); public static $hooks = array(); public static $warnings = array();
	public static function add_hook( $when, $cb ) { self::$hooks[ $when ][] = $cb; }
	public static function get_runner() { return (object) array( 'assoc_args' => self::$assoc_args ); }
	public static function warning( $m ) { self::$warnings[] = $m; }
}
class ActionScheduler { public static $s; public static function store() { return self::$s; } }
class ActionScheduler_Versions {
	public static $latest = '3.9.3';
	public static function instance() { return new self(); }
	public function latest_version() { return self::$latest; }
}
ActionScheduler::$s = new Test_Store();
mysqli_report( MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT );
$db   = new mysqli( $argv[2], $argv[4], '', $argv[5], (int) $argv[3] );
$wpdb = new Test_Wpdb( $db, $argv[6] );
foreach ( array_slice( $argv, 7 ) as $kv ) {
	list( $k, $v ) = explode( '=', $kv, 2 );
	if ( 'AS_VERSION' === $k ) { ActionScheduler_Versions::$latest = $v; continue; }
	if ( 'STORE' === $k ) { ActionScheduler::$s = 'hybrid' === $v ? new Test_Hybrid_Store() : ActionScheduler::$s; continue; }
	if ( 'REPLAY' === $k ) { $replay = true; continue; }
	if ( 'EXT_CACHE' === $k ) { function wp_using_ext_object_cache() { return true; } continue; }
	if ( 'TRANSIENTS' === $k ) { $transients = explode( ',', $v ); continue; }
	if ( 'CLI' === $k ) { parse_str( $v, WP_CLI::$assoc_args ); WP_CLI::$on = true; continue; }
	if ( 'PHP_HOOK' === $k ) { add_action( $v, 'strlen' ); continue; }
	define( $k, ctype_digit( $v ) ? (int) $v : $v );
}
if ( WP_CLI::$on ) { define( 'WP_CLI', true ); }
require $argv[1];
do_action( 'action_scheduler_init' );
foreach ( isset( WP_CLI::$hooks['before_invoke:action-scheduler run'] ) ? WP_CLI::$hooks['before_invoke:action-scheduler run'] : array() as $cb ) { call_user_func( $cb ); }
$replayed = array();
if ( ! empty( $replay ) ) {  // A PHP queue run: the listeners hear the bridge's outcomes replayed.
	$as_logger = new ActionScheduler_TestLogger();
	add_action( 'action_scheduler_failed_execution', array( $as_logger, 'log_failed_action' ), 10, 3 );
	add_action( 'action_scheduler_completed_action', function ( $id ) use ( &$replayed ) { $replayed[] = array( 'completed_action', $id ); } );
	add_action( 'action_scheduler_failed_execution', function ( $id, $e, $ctx ) use ( &$replayed ) { $replayed[] = array( 'failed_execution', $id, $e->getMessage(), $ctx ); } );
	add_action( 'action_scheduler_failed_action', function ( $id, $timeout ) use ( &$replayed ) { $replayed[] = array( 'failed_action', $id, $timeout ); } );
	do_action( 'action_scheduler_before_process_queue' );
}
$order = apply_filters( 'action_scheduler_claim_actions_order_by', 'ORDER BY priority ASC, attempts ASC, scheduled_date_gmt ASC, action_id ASC', 0, array() );
echo json_encode( array(
	'order_by'  => $order,
	'state'     => wch_bridge_state(),
	'ownership' => wch_bridge_ownership(),
	'exclude'   => ActionScheduler::$s->f['exclude-groups'],
	'text'      => wch_bridge_status_text(),
	'replayed'  => $replayed,
	'cli_warnings' => WP_CLI::$warnings,
	'option_writes' => $GLOBALS['option_writes'],
	'transients'   => isset( $transients ) ? array_combine( $transients, array_map( 'get_transient', $transients ) ) : null,
	'as_logger' => isset( $as_logger ) ? array( $as_logger->heard, has_filter( 'action_scheduler_failed_execution', array( $as_logger, 'log_failed_action' ) ) ) : null,
) );
