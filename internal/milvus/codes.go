package milvus

import "github.com/milvus-io/milvus-proto/go-api/v2/commonpb"

// Milvus error codes (common.Status.code, Milvus's pkg/util/merr) that the balancer has
// reason to act on. Milvus sends the legacy error_code beside each (merr's oldCode):
// NotReadyServe with CodeServiceNotReady, RateLimit with CodeRateLimit, ForceDeny with
// CodeQuotaExceeded; pymilvus retries CodeRateLimit (or the legacy RateLimit) with
// back-off, and so does the Go SDK's RetryOnRateLimitInterceptor (on the legacy code)
// where the application installs it.
const (
	CodeServiceNotReady    int32 = 1 // the proxy is starting or stopping: not the request's fault
	CodeServiceUnavailable int32 = 2
	CodeTooManyRequests    int32 = 4 // the proxy's queue is full
	CodeRateLimit          int32 = 8 // over a quota rate: retriable
	CodeQuotaExceeded      int32 = 9 // writes or reads denied by quota (force deny)
)

// codeNames names the Milvus error codes, as merr names its errors (Err dropped), for
// Milvus 2.4 to 2.6. A code not here is named "Other" in labels: the set stays bounded
// whatever a backend sends.
var codeNames = map[int32]string{
	1: "ServiceNotReady", 2: "ServiceUnavailable", 3: "ServiceMemoryLimitExceeded",
	4: "ServiceTooManyRequests", 5: "ServiceInternal", 6: "ServiceCrossClusterRouting",
	7: "ServiceDiskLimitExceeded", 8: "ServiceRateLimit", 9: "ServiceQuotaExceeded",
	10: "ServiceUnimplemented", 11: "ServiceTimeTickLongDelay", 12: "ServiceResourceInsufficient",

	100: "CollectionNotFound", 101: "CollectionNotLoaded", 102: "CollectionNumLimitExceeded",
	103: "CollectionNotFullyLoaded", 104: "CollectionLoaded", 105: "CollectionIllegalSchema",
	106: "CollectionOnRecovering", 107: "CollectionVectorClusteringKeyNotAllowed",
	108: "CollectionReplicateMode", 109: "CollectionSchemaMismatch",
	200: "PartitionNotFound", 201: "PartitionNotLoaded", 202: "PartitionNotFullyLoaded",
	250: "GeneralCapacityExceeded",
	300: "ResourceGroupNotFound", 301: "ResourceGroupAlreadyExist", 302: "ResourceGroupReachLimit",
	303: "ResourceGroupIllegalConfig", 304: "ResourceGroupNodeNotEnough", 305: "ResourceGroupServiceAvailable",
	400: "ReplicaNotFound", 401: "ReplicaNotAvailable",
	500: "ChannelNotFound", 501: "ChannelLack", 502: "ChannelReduplicate", 503: "ChannelNotAvailable",
	504: "ChannelCPExceededMaxLag",
	600: "SegmentNotFound", 601: "SegmentNotLoaded", 602: "SegmentLack", 603: "SegmentReduplicate",
	604: "SegmentLoadFailed",
	700: "IndexNotFound", 701: "IndexNotSupported", 702: "IndexDuplicate", 703: "TaskDuplicate",
	800: "DatabaseNotFound", 801: "DatabaseNumLimitExceeded", 802: "DatabaseInvalidName",
	901: "NodeNotFound", 902: "NodeOffline", 903: "NodeLack", 904: "NodeNotMatch",
	905: "NodeNotAvailable", 906: "NodeStateUnexpected",
	1000: "IoKeyNotFound", 1001: "IoFailed", 1002: "IoUnexpectEOF",
	1100: "ParameterInvalid", 1101: "ParameterMissing", 1102: "ParameterTooLarge",
	1200: "MetricNotFound",
	1300: "MqTopicNotFound", 1301: "MqTopicNotEmpty", 1302: "MqInternal", 1303: "DenyProduceMsg",
	1400: "PrivilegeNotAuthenticated", 1401: "PrivilegeNotPermitted", 1402: "PrivilegeGroupInvalidName",
	1600: "AliasNotFound", 1601: "AliasCollectionNameConflict", 1602: "AliasAlreadyExist",
	1603: "CollectionIDOfAliasNotFound",
	1700: "FieldNotFound", 1701: "FieldInvalidName",
	1800: "NeedAuthenticate", 1801: "IncorrectParameterFormat", 1802: "MissingRequiredParameters",
	1803: "MarshalCollectionSchema", 1804: "InvalidInsertData", 1805: "InvalidSearchResult",
	1806: "CheckPrimaryKey", 1807: "HTTPRateLimit",
	1900: "DenyReplicateMessage", 1901: "InvalidMsgBytes", 1902: "NoAssignSegmentID", 1903: "InvalidStreamObj",
	2000: "Segcore", 2001: "SegcoreUnsupported", 2002: "SegcorePretendFinished",
	2037: "SegcoreFollyOtherException", 2038: "SegcoreFollyCancel", 2039: "SegcoreOutOfRange",
	2040: "SegcoreGCPNativeError", 2099: "Knowhere",
	2100: "ImportFailed", 2200: "InconsistentRequery",
	2300: "CompactionReadDeltaLog", 2301: "IllegalCompactionPlan", 2302: "CompactionPlanConflict",
	2303: "ClusteringCompactionClusterNotSupport", 2304: "ClusteringCompactionCollectionNotSupport",
	2305: "ClusteringCompactionCollectionIsCompacting", 2306: "ClusteringCompactionNotSupportVector",
	2307: "ClusteringCompactionSubmitTaskFail", 2308: "ClusteringCompactionMetaError",
	2309: "ClusteringCompactionGetCollectionFail", 2310: "CompactionResultNotFound",
	2311: "AnalyzeTaskNotFound", 2312: "BuildCompactionRequestFail", 2313: "GetCompactionPlanResultFail",
	2314: "CompactionResult", 2315: "DuplicatedCompactionTask", 2316: "CleanPartitionStatsFail",
	2401: "DataNodeSlotExhausted",
	3000: "OperationNotSupported", 3001: "OldSessionExists",
	10000: "Canceled", 10001: "Timeout", 65535: "Unexpected",
}

// CodeName names a Milvus status for logs and the milvus_code metric label, from a bounded
// set: "Success" when both codes are 0 (or there was no status); else the name of code
// (codeNames) when it is set, as Milvus 2.3 and later set it; else the legacy error_code's
// commonpb.ErrorCode name, as older servers send only that; "Other" for a number in
// neither table.
func CodeName(code, errorCode int32) string {
	switch {
	case code == 0 && errorCode == 0:
		return "Success"
	case code != 0:
		if n, ok := codeNames[code]; ok {
			return n
		}
	default:
		if n, ok := commonpb.ErrorCode_name[errorCode]; ok {
			return n
		}
	}
	return "Other"
}
