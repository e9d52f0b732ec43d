/* placeholder until the engine lands */
int at_engine__placeholder(void);
int at_engine__placeholder(void) { return 0; }
