/* placeholder until the routes land */
int at_serve__placeholder(void);
int at_serve__placeholder(void) { return 0; }
