#ifndef PARLEY_CRABBITMQ_SHIM_H
#define PARLEY_CRABBITMQ_SHIM_H

// rabbitmq-c 0.11 (Debian 12) installs its headers at the top of /usr/include;
// 0.12+ moved them to rabbitmq-c/. Prefer the new layout when it exists.
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#endif

#include <sys/eventfd.h>

// A non-blocking eventfd that wakes a connection thread out of poll(2).
static inline int parley_make_wake_descriptor(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

// amqp_login is variadic, which Swift cannot call: a fixed-argument wrapper for
// PLAIN authentication.
// It also announces the capabilities rabbitmq-c 0.11 leaves out, so that the broker
// tells a consumer when its queue is deleted (consumer_cancel_notify) and a
// publisher when it stops reading it during a resource alarm (connection.blocked).
static inline amqp_rpc_reply_t parley_amqp_login_plain(
    amqp_connection_state_t state, const char *vhost, int channel_max,
    int frame_max, int heartbeat, const char *user, const char *password,
    const char *connection_name) {
    amqp_table_entry_t capabilities[4];
    const char *names[4] = {"consumer_cancel_notify", "connection.blocked",
                            "authentication_failure_close", "publisher_confirms"};
    for (int i = 0; i < 4; i++) {
        capabilities[i].key = amqp_cstring_bytes(names[i]);
        capabilities[i].value.kind = AMQP_FIELD_KIND_BOOLEAN;
        capabilities[i].value.value.boolean = 1;
    }
    amqp_table_entry_t properties[2];
    properties[0].key = amqp_cstring_bytes("capabilities");
    properties[0].value.kind = AMQP_FIELD_KIND_TABLE;
    properties[0].value.value.table.num_entries = 4;
    properties[0].value.value.table.entries = capabilities;
    properties[1].key = amqp_cstring_bytes("connection_name");
    properties[1].value.kind = AMQP_FIELD_KIND_UTF8;
    properties[1].value.value.bytes = amqp_cstring_bytes(connection_name);
    amqp_table_t table = {2, properties};
    return amqp_login_with_properties(state, vhost, channel_max, frame_max,
                                      heartbeat, &table, AMQP_SASL_METHOD_PLAIN,
                                      user, password);
}


// Method ids and flags are macros with casts that Swift does not import.
static const amqp_method_number_t PARLEY_BASIC_DELIVER = AMQP_BASIC_DELIVER_METHOD;
static const amqp_method_number_t PARLEY_BASIC_ACK = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t PARLEY_BASIC_NACK = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t PARLEY_BASIC_RETURN = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t PARLEY_BASIC_CANCEL = AMQP_BASIC_CANCEL_METHOD;
static const amqp_method_number_t PARLEY_CHANNEL_CLOSE = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t PARLEY_CONNECTION_CLOSE = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_method_number_t PARLEY_CONNECTION_BLOCKED = AMQP_CONNECTION_BLOCKED_METHOD;
static const amqp_method_number_t PARLEY_CONNECTION_UNBLOCKED = AMQP_CONNECTION_UNBLOCKED_METHOD;

static const amqp_flags_t PARLEY_PROPS_CONTENT_TYPE = AMQP_BASIC_CONTENT_TYPE_FLAG;
static const amqp_flags_t PARLEY_PROPS_DELIVERY_MODE = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const amqp_flags_t PARLEY_PROPS_MESSAGE_ID = AMQP_BASIC_MESSAGE_ID_FLAG;
static const amqp_flags_t PARLEY_PROPS_TYPE = AMQP_BASIC_TYPE_FLAG;
static const amqp_flags_t PARLEY_PROPS_TIMESTAMP = AMQP_BASIC_TIMESTAMP_FLAG;
static const amqp_flags_t PARLEY_PROPS_HEADERS = AMQP_BASIC_HEADERS_FLAG;

#endif
